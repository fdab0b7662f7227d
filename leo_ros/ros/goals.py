"""
Ending an action goal CANCELED from the server side (rclpy).

A client's cancel request moves a goal EXECUTING -> CANCELING, after which the server calls
``goal_handle.canceled()``. A stop that the server itself decides on (``/leo/stop``, lifecycle
deactivate) has no client request behind it, and ``canceled()`` on an EXECUTING goal raises
"invalid transition from state EXECUTING with event CANCELED". rclpy offers no public call for
the first step, so :func:`end_canceled` takes it the way rclpy's own cancel service does
(``ServerGoalHandle._update_state(GoalEvent.CANCEL_GOAL)``), then calls ``canceled()``.
"""


def end_canceled(goal_handle) -> str:
    """
    End an active goal CANCELED, whether or not a client asked for it.

    :return: '' when the goal ended CANCELED; otherwise why not (it was then aborted)
    """
    if not goal_handle.is_active:
        return 'the goal had already ended'
    try:
        if not goal_handle.is_cancel_requested:
            from rclpy.impl.implementation_singleton import rclpy_implementation
            goal_handle._update_state(rclpy_implementation.GoalEvent.CANCEL_GOAL)
        goal_handle.canceled()
        return ''
    except Exception as error:      # an rclpy without that state: abort, with the reason
        if goal_handle.is_active:
            goal_handle.abort()
        return f'could not end the goal canceled ({type(error).__name__}: {error}); aborted'
