"""Lifecycle transitions over services that lose or delay answers (fake clients, no DDS)."""

from leo_ros.ros.lifecycle_client import change_state
import pytest


class Future:
    def __init__(self, result=None):
        self._result = result

    def done(self):
        return self._result is not None

    def result(self):
        return self._result


class Client:
    """A service client whose calls get the scripted answers in turn (None: never answered)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = 0

    def wait_for_service(self, timeout_sec):
        return True

    def call_async(self, request):
        self.calls += 1
        return Future(self.answers.pop(0) if self.answers else None)

    def remove_pending_request(self, future):
        pass


def _change(success):
    from lifecycle_msgs.srv import ChangeState
    return ChangeState.Response(success=success)


def _state(label):
    from lifecycle_msgs.msg import State
    from lifecycle_msgs.srv import GetState
    return GetState.Response(current_state=State(label=label))


@pytest.mark.parametrize('changes,states,expected', [
    # answered at once
    ([True], [], (True, '')),
    ([False], [_state('unconfigured')], (False, 'configure: the node refused it')),
    # the first answer is lost; get_state says the transition ran
    ([None], [_state('inactive')], (True, '')),
    # the node is busy in its configure callback (get_state unanswered), the resent request is
    # refused because the first one did the transition meanwhile
    ([None, False], [None, _state('inactive')], (True, '')),
])
def test_configure_succeeds_exactly_when_the_node_ends_configured(changes, states, expected):
    changes = [None if c is None else _change(c) for c in changes]
    change, get = Client(changes), Client(states)
    assert change_state(change, get, 'configure', timeout=3.0, retry_after=0.05) == expected
