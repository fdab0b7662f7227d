"""The main() every leo_ros node shares: environment, init, adapter, executor, shutdown."""

import sys


def run_node(name, build, argv=None, num_threads=2) -> int:
    """
    Create node ``name``, attach the adapter ``build(node)`` and spin until shutdown.

    :param build: callable that declares the node's parameters, topics and services; a
        ValueError from it (a bad parameter value) is logged and ends the process with 2
    :param num_threads: MultiThreadedExecutor threads (long service calls need their own)
    :return: the process exit code
    """
    from leo_ros.ros.env import apply_ros_environment
    apply_ros_environment()           # before rclpy creates its context
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
    rclpy.init(args=sys.argv if argv is None else argv)
    node = rclpy.create_node(name)
    try:
        adapter = build(node)
    except ValueError as error:
        node.get_logger().fatal(f'bad parameter: {error}')
        node.destroy_node()
        rclpy.try_shutdown()
        return 2
    executor = MultiThreadedExecutor(num_threads=num_threads)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        close = getattr(adapter, 'close', None)
        if close is not None:
            close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
