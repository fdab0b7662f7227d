"""
leo_lifecycle_manager: bring the managed nodes to active, like Nav2's lifecycle manager.

For each name in ``node_names``, in order, it waits for ``<name>/change_state``
(lifecycle_msgs/ChangeState) and calls configure, then activate. leo-agent and
launch/agent.launch.py both start it (leo_ros/agent/node_set.py). It then stays up and reports
each node's state on ``/diagnostics`` (``leo_ros: lifecycle_manager``); a node that fails a
transition is reported there (ERROR) and in the log.
"""

import sys
import threading

from leo_ros.ros.parameters import Spec

PARAMETERS = {
    'node_names': Spec(['perception_node', 'policy_node'], 'Managed nodes to bring up, in '
                       "order (names relative to this node's namespace)", read_only=True),
    'autostart': Spec(True, 'Configure and activate the nodes at start-up', read_only=True),
    'transition_timeout': Spec(60.0, 'Wait this long for a node to appear and for each of its '
                               'transitions [s]', 1.0, 3600.0, read_only=True),
}


class LifecycleManager:
    """Configure and activate managed nodes over their change_state services."""

    def __init__(self, node):
        from diagnostic_msgs.msg import DiagnosticArray
        from leo_ros.ros.parameters import declare, warn_undeclared
        from lifecycle_msgs.srv import ChangeState, GetState
        self.node = node
        self.settings = declare(node, PARAMETERS)
        warn_undeclared(node, PARAMETERS)
        self.states = dict.fromkeys(self.settings['node_names'], 'unknown')
        self.errors = {}
        self.change = {name: node.create_client(ChangeState, f'{name}/change_state')
                       for name in self.states}
        self.get = {name: node.create_client(GetState, f'{name}/get_state')
                    for name in self.states}
        self.pub_diagnostics = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        node.create_timer(1.0, self._publish_diagnostics)
        self.done = threading.Event()
        if self.settings['autostart']:
            threading.Thread(target=self.bring_up, name='leo_lifecycle', daemon=True).start()

    def transition(self, name, label):
        """Run one transition of node ``name``; return True when it succeeded."""
        from leo_ros.ros.lifecycle_client import change_state
        timeout = self.settings['transition_timeout']
        success, why = change_state(self.change[name], self.get[name], label, timeout)
        if not success:
            self.errors[name] = why     # says the timeout where there was one
            self.node.get_logger().error(f'{name}: {self.errors[name]}')
        return success

    def bring_up(self):
        """Configure, then activate every node, in order; stop at the first failure."""
        try:
            for name in self.states:
                state = self._state(name)
                if state == 'unconfigured' and not self.transition(name, 'configure'):
                    return
                if self._state(name) == 'inactive' and not self.transition(name, 'activate'):
                    return
                self._state(name)
                self.node.get_logger().info(f'{name} is {self.states[name]}')
        finally:
            self.done.set()

    def _state(self, name):
        from leo_ros.ros.lifecycle_client import node_state
        self.states[name] = node_state(self.get[name], self.settings['transition_timeout']) \
            or 'no answer'
        return self.states[name]

    def _publish_diagnostics(self):
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
        if self.errors:
            level, message = DiagnosticStatus.ERROR, '; '.join(
                f'{name}: {error}' for name, error in self.errors.items())[:200]
        elif all(state == 'active' for state in self.states.values()):
            level, message = DiagnosticStatus.OK, 'all nodes active'
        else:
            level, message = DiagnosticStatus.WARN, 'bringing nodes up'
        status = DiagnosticStatus(level=level, name='leo_ros: lifecycle_manager',
                                  message=message, hardware_id='leo_ros')
        status.values = [KeyValue(key=name, value=state) for name, state in self.states.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.node.get_clock().now().to_msg()
        self.pub_diagnostics.publish(array)


def main(argv=None) -> int:
    from leo_ros.ros.node_runner import run_node
    return run_node('leo_lifecycle_manager', LifecycleManager, argv, num_threads=3)


if __name__ == '__main__':
    sys.exit(main())
