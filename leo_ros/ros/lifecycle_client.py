"""
Lifecycle transitions of another node over its services, robust to a lost response.

A service client created just now can see the server before the server's response writer has
matched the client's reader; Fast DDS then drops the response ("failed to send response
(timeout)") and the caller waits in vain, although the transition ran. So a call that gets no
answer within ``retry_after`` asks ``get_state``: the node already in the target state is
success, a node still in the transition is waited for, otherwise the request is sent again,
until ``timeout``. A refused request is success too when the node is in the target state (a
resent request refused because the first one, busy in a slow callback, did the transition).
"""

import time

#: transition label (lifecycle_msgs/Transition.TRANSITION_<LABEL>) -> the state it leads to
TARGET_STATES = {'configure': 'inactive', 'cleanup': 'unconfigured', 'activate': 'active',
                 'deactivate': 'inactive'}
#: states of a transition under way
TRANSITION_STATES = ('configuring', 'cleaningup', 'activating', 'deactivating', 'shuttingdown',
                     'errorprocessing')


def _answer(client, request, timeout):
    """Return the response of one call, or None after ``timeout`` seconds."""
    future = client.call_async(request)
    deadline = time.monotonic() + timeout
    while not future.done():
        if time.monotonic() > deadline:
            client.remove_pending_request(future)
            return None
        time.sleep(0.01)
    return future.result()


def node_state(get_client, timeout=5.0) -> str:
    """Return a node's lifecycle state label ('' when it does not answer)."""
    from lifecycle_msgs.srv import GetState
    if not get_client.wait_for_service(timeout_sec=timeout):
        return ''
    reply = _answer(get_client, GetState.Request(), timeout)
    return '' if reply is None else reply.current_state.label


def change_state(change_client, get_client, label, timeout=60.0, retry_after=5.0):
    """
    Run transition ``label`` ('configure', 'activate', ...); return (success, why).

    :param change_client: a ``lifecycle_msgs/srv/ChangeState`` client of the node
    :param get_client: a ``lifecycle_msgs/srv/GetState`` client of the node
    """
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    target = TARGET_STATES[label]
    transition_id = getattr(Transition, f'TRANSITION_{label.upper()}')
    deadline = time.monotonic() + timeout
    if not change_client.wait_for_service(timeout_sec=timeout):
        return False, f'{label}: no change_state service within {timeout:.0f} s'
    send = True
    while time.monotonic() < deadline:
        wait = min(retry_after, max(0.0, deadline - time.monotonic()))
        if send:
            reply = _answer(change_client, ChangeState.Request(
                transition=Transition(id=transition_id)), wait)
            if reply is not None:
                # A refusal after a resend can mean the first request did it (its answer
                # came too late): the node in the target state is success.
                if reply.success or node_state(get_client, min(retry_after, 5.0)) == target:
                    return True, ''
                return False, f'{label}: the node refused it'
        else:
            time.sleep(min(0.2, wait))
        state = node_state(get_client, min(retry_after, 5.0))
        if state == target:                     # done: the answer was lost
            return True, ''
        send = state not in TRANSITION_STATES   # still under way: wait, do not send again
    return False, f'{label}: no answer within {timeout:.0f} s'


def change_node_state(node, name, label, timeout=60.0):
    """
    Run transition ``label`` of node ``name`` through clients of ``node`` made for this call.

    :return: (success, why), as :func:`change_state`
    """
    from lifecycle_msgs.srv import ChangeState, GetState
    change = node.create_client(ChangeState, f'{name}/change_state')
    get = node.create_client(GetState, f'{name}/get_state')
    try:
        return change_state(change, get, label, timeout)
    finally:
        node.destroy_client(change)
        node.destroy_client(get)
