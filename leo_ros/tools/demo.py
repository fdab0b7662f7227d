"""
leo-demo: the main job of ``make demo``.

Until the agent lands, the smallest real thing: ``leo-ping`` (two nodes in two processes
exchanging a 640x480 PointCloud2 stream and the Instruct service, checked by a third).
"""

import sys


def main(argv=None) -> int:
    from leo_ros.tools import ping
    return ping.main(sys.argv[1:] if argv is None else argv)
