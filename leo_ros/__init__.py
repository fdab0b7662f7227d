"""leo_ros: an LEO-style embodied generalist agent on ROS 2."""

import pkgutil

# The generated interfaces (msg/, srv/, action/) live only in the installed copy of this
# package; when the source tree comes first on sys.path (``python -m pytest`` in the checkout),
# search the installed copy too so that ``leo_ros.msg`` resolves either way.
__path__ = pkgutil.extend_path(__path__, __name__)
