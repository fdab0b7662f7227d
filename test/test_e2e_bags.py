"""
End to end: record the agent in the built-in world, replay the bag into a fresh agent.

``leo-agent --sim --record OUT.mcap`` runs the world, the agent and the recorder; the client
asks the world's question. Then a fresh ``leo-agent --use-sim-time`` (no world) gets the
bag's camera topics from ``leo-replay --inputs`` and is asked the same question. The object
tokens it builds must agree with the recorded ones within 1 cm, and the decision must be the
same. Both agents read the sim camera's instance ids (the same perception settings).
"""

from pathlib import Path
import sys
import time

from leo_ros.ros.process import wait_until
import numpy as np
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.prefix) / 'bin'
#: a test-split scene (leo_ros.data.shards), small frames at a low rate: a short bag
SIM = {'rate': 2.0, 'width': 320, 'height': 240, 'task_family': 'qa'}


def parameter_file(tmp_path):
    """Write agent.yaml with the sim settings above and instance ids for perception."""
    import yaml
    from leo_ros.data.shards import split_seeds
    from leo_ros.ros.env import share_directory
    config = yaml.safe_load((share_directory() / 'config' / 'agent.yaml').read_text())
    config['/**/sim_node']['ros__parameters'].update(SIM, seed=int(split_seeds('test', 1)[0]))
    config['/**/perception_node']['ros__parameters']['instance_field'] = 'instance'
    path = tmp_path / 'agent.yaml'
    path.write_text(yaml.safe_dump(config))
    return path


def wait_ready(client, timeout=300.0):
    """Wait for a scene and for the model to answer; return the first reply or None."""
    assert wait_until(lambda: client.instruct.wait(0.5) and client.scene_at is not None,
                      timeout=timeout, period=0.5), 'the agent never published a scene'
    replies = []

    def ready():
        replies.append(client.instruct.call('hello', timeout=60.0, dry_run=True, spin=False))
        return 'model not ready' not in replies[-1].error
    wait_until(ready, timeout=timeout, period=2.0)
    return replies[-1] if replies else None


def tokens_of(msg):
    from leo_ros.ros.conversions import scene_objects_to_tokens
    return scene_objects_to_tokens(msg)


def matched_center_error(a, b):
    """Return the largest distance between each object of ``a`` and its nearest in ``b``."""
    if len(a) != len(b) or not len(a):
        return np.inf
    distance = np.linalg.norm(a.centers[:, None] - b.centers[None], axis=-1)     # (K, K)
    return float(max(distance.min(axis=1).max(), distance.min(axis=0).max()))


def test_record_replay_same_tokens_and_decision(spawn, spun_node, tmp_path):
    from leo_ros.bags.mcap_bag import BagReader
    from leo_ros.msg import SceneObjects
    from leo_ros.ros.agent_client import AgentClient
    from leo_ros.srv import TaskStatus
    from rclpy.serialization import deserialize_message
    config = parameter_file(tmp_path)
    bag = tmp_path / 'session.mcap'
    client = AgentClient(spun_node)

    # 1. live: world + agent + recorder
    live = spawn([BIN / 'leo-agent', '--sim', '--device', 'cpu', '--config-file', config,
                  '--record', bag], name='leo-agent-live')
    first = wait_ready(client)
    model_ok = first is not None and 'model not ready' not in first.error
    status = client.call(client.status, TaskStatus.Request())
    assert status.has_task and status.instruction, status
    question = status.instruction
    time.sleep(3.0)                       # a few more frames reach the scene memory
    live_answer = client.instruct.call(question, timeout=120.0, dry_run=True, spin=False) \
        if model_ok else None
    live_tokens = tokens_of(client.scene)
    time.sleep(1.0)
    assert live.stop(timeout=30.0) == 0, live.output[-3000:]

    # 2. the bag is a rosbag2 MCAP bag with the agent's inputs and outputs
    summary = BagReader(bag).summary()
    assert summary is not None and summary.profile == 'ros2', live.output[-3000:]
    counts = {t: i.count for t, i in summary.topics.items()}
    for topic in ('/camera/points', '/camera/pose', '/odom', '/leo/scene_objects',
                  '/diagnostics'):
        assert counts.get(topic, 0) > 0, (topic, counts)
    recorded = list(BagReader(bag).messages(topics=['/leo/scene_objects']))
    recorded_tokens = tokens_of(deserialize_message(recorded[-1].data, SceneObjects))
    assert matched_center_error(recorded_tokens, live_tokens) < 0.01

    # 3. replay the last seconds of camera input into a fresh agent (no world)
    client.scene_at = None
    fresh = spawn([BIN / 'leo-agent', '--use-sim-time', '--device', 'cpu', '--config-file',
                   config], name='leo-agent-replay')
    assert wait_until(lambda: spun_node.count_subscribers('/camera/points') > 0, 120.0)
    start = max(summary.duration - 8.0, 0.0)
    replay = spawn([BIN / 'leo-replay', bag, '--inputs', '--start', f'{start:.1f}',
                    '--wait-for-subscribers', '--quiet'], name='leo-replay')
    assert wait_until(lambda: replay.poll() is not None, timeout=120.0), 'leo-replay hung'
    assert replay.poll() == 0, replay.output
    assert wait_until(lambda: client.scene_at is not None, 30.0), fresh.output[-3000:]
    time.sleep(2.0)
    replay_tokens = tokens_of(client.scene)
    error = matched_center_error(replay_tokens, recorded_tokens)
    print(f'{len(replay_tokens)} objects; largest centre difference {error * 100:.2f} cm')
    assert error < 0.01, (replay_tokens.centers, recorded_tokens.centers)

    # 4. the same question, the same decision
    assert model_ok, f'the policy never loaded: {first.error if first else "no reply"}'
    wait_ready(client)
    replay_answer = client.instruct.call(question, timeout=120.0, dry_run=True, spin=False)
    print(f'Q: {question}\nlive: {live_answer.kind} {live_answer.response!r}\n'
          f'replay: {replay_answer.kind} {replay_answer.response!r}')
    assert live_answer.success and replay_answer.success, (live_answer, replay_answer)
    assert (replay_answer.kind, replay_answer.response) == \
        (live_answer.kind, live_answer.response)
    assert fresh.poll() is None, 'a node of the replayed agent died'
