"""
Action clients for standard robot interfaces: NavigateToPose (Nav2), GripperCommand.

Both are used from worker threads while the node's executor spins elsewhere, so every wait
here polls a future with a deadline; none blocks the executor. A goal is sent, accepted or
rejected within ``timeout``; :meth:`GoalClient.wait` then follows it to its result while
checking for cancellation; :meth:`GoalClient.cancel` cancels the goal in flight.
"""

import threading
import time


class GoalError(RuntimeError):
    """The action server is absent, did not answer, or rejected the goal."""


def _wait_future(future, deadline, poll=0.005):
    while not future.done():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


class GoalClient:
    """
    One action client with at most one goal in flight (a new goal replaces the old one).

    :param node: rclpy Node
    :param action_type: the action class (NavigateToPose, GripperCommand)
    :param name: action name
    :param what: how errors name the server ('Nav2 (navigate_to_pose)')
    """

    def __init__(self, node, action_type, name, what, callback_group=None):
        from rclpy.action import ActionClient
        self.action_type = action_type
        self.what = what
        self.client = ActionClient(node, action_type, name, callback_group=callback_group)
        self._lock = threading.Lock()
        self._handle = None

    def server_ready(self) -> bool:
        """Return whether the action server is discovered now."""
        return self.client.server_is_ready()

    def send(self, goal, timeout, on_feedback=None):
        """
        Send ``goal`` and wait until the server accepts it.

        :return: the goal handle
        :raises GoalError: the server is absent, silent, or rejected the goal
        """
        deadline = time.monotonic() + timeout
        while not self.client.server_is_ready():
            if time.monotonic() > deadline:
                raise GoalError(f'{self.what}: no action server after {timeout:.1f} s')
            time.sleep(0.01)
        callback = (lambda msg: on_feedback(msg.feedback)) if on_feedback else None
        future = self.client.send_goal_async(goal, feedback_callback=callback)
        if not _wait_future(future, deadline):
            raise GoalError(f'{self.what}: the goal was not answered within {timeout:.1f} s')
        handle = future.result()
        if handle is None or not handle.accepted:
            raise GoalError(f'{self.what} rejected the goal')
        with self._lock:
            self._handle = handle
        return handle

    def wait(self, handle, timeout, cancel_requested=lambda: False):
        """
        Follow an accepted goal to its end.

        :param cancel_requested: polled; when true the goal is cancelled and waited for
        :return: ``(status, result)``: 'succeeded', 'canceled', 'aborted', 'timeout'; the
            action's result message (None on timeout)
        """
        from action_msgs.msg import GoalStatus
        result_future = handle.get_result_async()
        deadline = time.monotonic() + timeout
        while not result_future.done():
            if cancel_requested():
                self.cancel(handle)
                _wait_future(result_future, time.monotonic() + 2.0)
                return 'canceled', None
            if time.monotonic() > deadline:
                self.cancel(handle)
                return 'timeout', None
            time.sleep(0.01)
        response = result_future.result()
        with self._lock:
            if self._handle is handle:
                self._handle = None
        names = {GoalStatus.STATUS_SUCCEEDED: 'succeeded', GoalStatus.STATUS_CANCELED:
                 'canceled', GoalStatus.STATUS_ABORTED: 'aborted'}
        return names.get(response.status, f'status {response.status}'), response.result

    def cancel(self, handle=None):
        """Ask the server to cancel ``handle`` (default: the goal in flight); do not wait."""
        with self._lock:
            handle = handle or self._handle
            if handle is self._handle:
                self._handle = None
        if handle is None:
            return None
        return handle.cancel_goal_async()

    @property
    def active(self) -> bool:
        """Return whether a goal of this client is in flight."""
        with self._lock:
            return self._handle is not None


def nav2_client(node, name='navigate_to_pose', callback_group=None):
    """Return a GoalClient for Nav2's NavigateToPose; raise ImportError without nav2_msgs."""
    from nav2_msgs.action import NavigateToPose
    return GoalClient(node, NavigateToPose, name, f'Nav2 ({name})', callback_group)


def gripper_client(node, name, callback_group=None):
    """Return a GoalClient for control_msgs' GripperCommand; ImportError without it."""
    from control_msgs.action import GripperCommand
    return GoalClient(node, GripperCommand, name, f'gripper ({name})', callback_group)
