"""
QoS of the agent's services and action server (a burst of calls is answered) and latched topics.

A service's requests and responses travel on DDS topics whose history depth is the QoS
depth. With rclpy's default (``qos_profile_services_default``: reliable, keep last 10), a
burst of 50 concurrent calls overflows the request reader: 40 requests are dropped without a
trace and their callers wait forever. The agent's services keep the last
:data:`SERVICE_DEPTH` requests instead, and every request is answered at once (a result, or
``busy``), so the queue never holds more than one burst. Clients that send many calls at once
need the same depth on their side (the response reader): :func:`serving_qos` gives it.

:func:`latched_qos` is the profile of state topics that late subscribers must still get (the
map, ``leo/world_reset``, ``sim/status``), like map_server's. :func:`rclpy_qos` gives a recorded
topic's profile back to rclpy (record and replay).
"""

#: Requests (and responses) a service keeps: more than any one burst of calls.
SERVICE_DEPTH = 1000


def serving_qos(depth=SERVICE_DEPTH):
    """Return the QoS profile of leo_ros's services and action services (reliable, deep)."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth),
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def latched_qos(depth=1):
    """Return the QoS of a latched topic: reliable, transient local, the last ``depth`` kept."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth),
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def rclpy_qos(profile):
    """Return the rclpy QoSProfile of a bag's ``leo_ros.bags.mcap_bag.QosProfile``."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    qos = QoSProfile(depth=max(int(profile.depth), 1))
    qos.reliability = ReliabilityPolicy.BEST_EFFORT if profile.reliability == 'best_effort' \
        else ReliabilityPolicy.RELIABLE
    qos.durability = DurabilityPolicy.TRANSIENT_LOCAL \
        if profile.durability == 'transient_local' else DurabilityPolicy.VOLATILE
    return qos
