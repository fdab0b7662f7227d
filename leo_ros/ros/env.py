"""The ROS environment every leo_ros process runs with."""

import os
from pathlib import Path
import random
import sys

#: Set by the ROS wheels' .pth bootstrapper after it re-execs Python with LD_LIBRARY_PATH; a
#: child started from another interpreter that inherits it skips the re-exec and cannot load
#: rclpy, so it is removed from every child environment.
BOOTSTRAP_GUARD = '_ROS_WHEELS_BOOTSTRAP_COMPLETE'
#: Fast DDS 3 (Kilted on) reads FASTDDS_*; Fast DDS 2 (Humble, Jazzy) reads FASTRTPS_*.
PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')
FAST_DDS_2_DISTROS = ('humble', 'iron', 'jazzy')


def ros_distro() -> str:
    """Return the ROS distribution: $ROS_DISTRO, else the one the rclpy wheel is from."""
    if os.environ.get('ROS_DISTRO'):
        return os.environ['ROS_DISTRO']
    from importlib import metadata
    for distro in ('kilted', 'jazzy', 'humble', 'rolling'):
        try:
            metadata.version(f'ros-{distro}-rclpy')
            return distro
        except metadata.PackageNotFoundError:
            continue
    return ''


def share_directory() -> Path:
    """
    Return leo_ros's share directory (launch/, config/).

    Uses the ament index when the package is installed (in a ROS workspace, or in the
    virtual environment of ROS wheels, which is its own ament prefix), else the source tree.
    """
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory('leo_ros'))
    except Exception:  # no AMENT_PREFIX_PATH, or not installed there
        pass
    in_prefix = Path(sys.prefix) / 'share' / 'leo_ros'
    if (in_prefix / 'package.xml').is_file():
        return in_prefix
    return Path(__file__).resolve().parents[2]


def dds_profile_path() -> Path:
    """Return the Fast DDS profile shipped in config/ (large best-effort messages)."""
    return share_directory() / 'config' / 'fastdds.xml'


def apply_ros_environment(environ=None) -> dict:
    """
    Set defaults that every leo_ros process needs, keeping what the user already set.

    Must run before rclpy creates its context, since the RMW reads these at start-up.

    :param environ: mapping to update in place (default: ``os.environ``)
    :return: the updated mapping
    """
    environ = os.environ if environ is None else environ
    environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    # In a virtual environment of ROS wheels, the environment itself is the ament prefix.
    if not environ.get('AMENT_PREFIX_PATH') and \
            (Path(sys.prefix) / 'share' / 'ament_index').is_dir():
        environ['AMENT_PREFIX_PATH'] = sys.prefix
    if not any(environ.get(name) for name in PROFILE_VARIABLES):
        profile = dds_profile_path()
        if profile.is_file():
            distro = environ.get('ROS_DISTRO') or ros_distro()
            fast_dds_2 = distro in FAST_DDS_2_DISTROS
            environ[PROFILE_VARIABLES[1] if fast_dds_2 else PROFILE_VARIABLES[0]] = str(profile)
    return environ


def child_environment(extra=None) -> dict:
    """
    Return an environment for a leo_ros child process.

    :param extra: variables to set on top (for example ``ROS_DOMAIN_ID``)
    """
    environ = dict(os.environ)
    environ.pop(BOOTSTRAP_GUARD, None)
    environ['PYTHONUNBUFFERED'] = '1'
    environ.update(extra or {})
    return apply_ros_environment(environ)


def private_domain() -> dict:
    """
    Put this process on a ROS domain of its own (unless ROS_DOMAIN_ID is set), on loopback.

    For benchmarks that start their nodes as children; call it before rclpy starts.

    :return: the variables the children need to join the domain
    """
    domain = os.environ.get('ROS_DOMAIN_ID') or str(random.Random().randint(120, 200))
    env = {'ROS_DOMAIN_ID': domain, 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    os.environ.update(env)
    apply_ros_environment()
    return env
