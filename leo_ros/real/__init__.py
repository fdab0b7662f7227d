"""
Real scans: one point cloud file in, object tokens and the policy's answer out (no ROS).

``from leo_ros.real import ask; ask('scan.pcd', 'how many objects are on the table?')``
(:mod:`leo_ros.real.ask`); ``leo-ask`` is its command line and ``leo-eval --real DIR`` scores
questions about labelled scans (:mod:`leo_ros.real.evaluate`).
"""


def ask(scan, question, **options):
    """Answer ``question`` about a scan file; see :func:`leo_ros.real.ask.ask`."""
    from leo_ros.real.ask import ask as _ask
    return _ask(scan, question, **options)
