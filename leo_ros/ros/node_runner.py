"""The main() every leo_ros node shares: environment, init, adapter, executor, shutdown."""

import sys


def lifecycle_entity(adapter):
    """
    Wrap an adapter's lifecycle methods as an rclpy.lifecycle.ManagedEntity.

    The adapter's ``configure``, ``activate``, ``deactivate``, ``cleanup`` and ``shutdown``
    (each returns True on success; a missing one succeeds) run on the transitions.
    """
    from rclpy.lifecycle import ManagedEntity, TransitionCallbackReturn

    def transition(name):
        def callback(_state):
            method = getattr(adapter, name, None)
            try:
                ok = True if method is None else method()
            except Exception as error:   # a failed transition is reported, not raised
                adapter.node.get_logger().error(f'{name} failed: {type(error).__name__}: '
                                                f'{error}')
                return TransitionCallbackReturn.ERROR
            return TransitionCallbackReturn.SUCCESS if ok else TransitionCallbackReturn.FAILURE
        return callback

    class Entity(ManagedEntity):
        on_configure = staticmethod(transition('configure'))
        on_activate = staticmethod(transition('activate'))
        on_deactivate = staticmethod(transition('deactivate'))
        on_cleanup = staticmethod(transition('cleanup'))
        on_shutdown = staticmethod(transition('shutdown'))

    return Entity()


def run_node(name, build, argv=None, num_threads=2, lifecycle=False) -> int:
    """
    Create node ``name``, attach the adapter ``build(node)`` and spin until shutdown.

    :param build: callable that declares the node's parameters, topics and services; a
        ValueError from it (a bad parameter value) is logged and ends the process with 2
    :param num_threads: MultiThreadedExecutor threads (long service calls need their own)
    :param lifecycle: make it an rclpy.lifecycle.LifecycleNode whose transitions call the
        adapter's configure/activate/deactivate/cleanup/shutdown (it starts unconfigured;
        leo_lifecycle_manager, or ``<node>/change_state``, brings it up)
    :return: the process exit code
    """
    from leo_ros.ros.env import apply_ros_environment
    apply_ros_environment()           # before rclpy creates its context
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
    rclpy.init(args=sys.argv if argv is None else argv)
    if lifecycle:
        from rclpy.lifecycle import LifecycleNode
        node = LifecycleNode(name)
    else:
        node = rclpy.create_node(name)
    try:
        adapter = build(node)
        if lifecycle:
            node.add_managed_entity(lifecycle_entity(adapter))
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
