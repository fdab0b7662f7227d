"""
End to end: the built-in world and the agent as separate processes, driven by a real client.

``leo-agent --sim`` starts sim_node, perception_node and policy_node (the shipped default
model); the test resets the world to navigation tasks on a test-split scene, sends each
instruction through ``/leo/instruct`` and asks the world whether the robot reached the object.
"""

from pathlib import Path
import sys
import time

from leo_ros.ros.process import wait_until
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Navigation tasks tried until one reaches its object. Through perception the shipped model
#: reaches 62-86 % of navigation targets (`leo-eval --tokens perception`, seeds 0-2; the model
#: before it 64 % at seed 0, and 0 of 6 here once in CI), so one success in six is required.
NAV_TASKS = 6


@pytest.fixture
def agent_client(spawn, spun_node):
    """Start world + agent; yield an AgentClient once the model answers."""
    from leo_ros.ros.agent_client import AgentClient
    agent = spawn([str(Path(sys.prefix) / 'bin' / 'leo-agent'), '--sim', '--device', 'cpu'],
                  name='leo-agent')
    client = AgentClient(spun_node)
    assert wait_until(lambda: client.instruct.wait(0.5) and client.scene_at is not None,
                      timeout=240.0, period=0.5), 'the agent never came up'
    assert wait_until(lambda: 'model not ready' not in client.instruct.call(
        'hello', timeout=60.0, spin=False).error, timeout=240.0, period=1.0)
    yield client
    assert agent.poll() is None, 'a node of the agent died'


def test_navigation_reaches_the_object_and_bad_input_is_refused(agent_client):
    from leo_ros.data.shards import split_seeds
    from leo_ros.srv import TaskStatus
    client = agent_client
    seed = split_seeds('test', 1)[0]

    bad = client.instruct.call('   ', timeout=60.0, spin=False)
    assert not bad.success and 'empty' in bad.error

    reached, answers = 0, []
    for task_seed in range(NAV_TASKS):
        reset = client.reset_world(seed, 'nav', task_seed, look_around=True)
        assert reset.success, reset.message
        reply = client.instruct.call(reset.instruction, timeout=60.0, spin=False)
        answers.append((reset.instruction, reply.success, reply.kind, reply.response,
                        reply.error))
        if not reply.success:
            continue
        assert reply.kind == 'nav_goal', answers[-1]
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            status = client.call(client.status, TaskStatus.Request())
            if status.success:
                reached += 1
                break
            time.sleep(0.5)
        if reached:
            break
    print('\n'.join(str(a) for a in answers), f'\nreached after {len(answers)} task(s)')
    assert reached >= 1, answers
    # perception_node labels the objects it tracks with the shipped model's classifier.
    labels = [obj.label for obj in client.scene.objects]
    assert any(label != 'unknown' for label in labels), labels

    # Every node reports on /diagnostics; the policy says its model is ready.
    names = set(client.diagnostics)
    assert {'leo_ros: policy_node', 'leo_ros: sim_node',
            'perception_node: scene tokenizer'} <= names, names
    policy = {kv.key: kv.value for kv in client.diagnostics['leo_ros: policy_node'].values}
    assert policy['model_ready'] == 'True' and policy['device'] == 'cpu'

    # After all that, the agent still answers a plain question.
    reset = client.reset_world(seed, 'qa', 0)
    reply = client.instruct.call(reset.instruction, timeout=60.0, spin=False)
    assert reply.success and reply.kind == 'text' and reply.response, reply
