"""
QoS of the agent's services and action server, chosen so that a burst of calls is answered.

A service's requests and responses travel on DDS topics whose history depth is the QoS
depth. With rclpy's default (``qos_profile_services_default``: reliable, keep last 10), a
burst of 50 concurrent calls overflows the request reader: 40 requests are dropped without a
trace and their callers wait forever. The agent's services keep the last
:data:`SERVICE_DEPTH` requests instead, and every request is answered at once (a result, or
``busy``), so the queue never holds more than one burst. Clients that send many calls at once
need the same depth on their side (the response reader): :func:`serving_qos` gives it.
"""

#: Requests (and responses) a service keeps: more than any one burst of calls.
SERVICE_DEPTH = 1000


def serving_qos(depth=SERVICE_DEPTH):
    """Return the QoS profile of leo_ros's services and action services (reliable, deep)."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth),
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
