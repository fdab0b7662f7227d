"""
Run the agent's nodes for tests and benchmarks: the world, the policy and a scene feed.

:class:`AgentHarness` starts ``sim_node`` and ``policy_node`` as separate processes on the
current ROS domain, brings the managed policy node to active over its standard
``change_state`` service, and feeds ``leo/scene_objects`` with the built-in world's
ground-truth object tokens (:class:`WorldSceneFeed`, what ``leo-eval`` calls world tokens), so
that the policy has a full scene at once without perception's look-around. Tools that must
exercise perception too use ``leo-agent --sim`` instead.

``model_path='pointing'`` (or ``'pointing:DELAY'``) runs the real policy_node with
:class:`~leo_ros.agent.stand_in_policies.PointingPolicy` in place of a checkpoint
(``python -m leo_ros.ros.harness --ros-args ...``): node tests then do not depend on a
trained model, and every refusal they see comes from the node's own gates.
"""

from contextlib import contextmanager
import sys
import threading
import time

from leo_ros.ros.process import ManagedProcess, wait_until

#: sim_node settings that keep the world cheap: no cloud (no perception here), a small camera
LIGHT_SIM = {'width': 160, 'height': 120, 'publish_points': False, 'rate': 10.0}


class WorldSceneFeed:
    """
    Publish a built-in world's ground-truth object tokens on ``leo/scene_objects``.

    :param node: an rclpy node spun elsewhere
    :param period: seconds between messages
    :param points_per_object: points sampled per object
    """

    def __init__(self, node, period=0.2, points_per_object=256):
        from leo_ros.msg import SceneObjects
        from rclpy.qos import qos_profile_sensor_data
        self.node = node
        self.period = period
        self.points_per_object = points_per_object
        self.publisher = node.create_publisher(SceneObjects, 'leo/scene_objects',
                                               qos_profile_sensor_data)
        self.world = None
        self._message = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='scene_feed', daemon=True)
        self._thread.start()

    def set_world(self, seed):
        """Feed the scene of world ``seed`` (as sim_node builds it); return the World."""
        from leo_ros.ros.conversions import scene_tokens_to_msg
        from leo_ros.sim.world import World
        world = World(int(seed))
        message = scene_tokens_to_msg(world.scene_tokens(self.points_per_object))
        with self._lock:
            self.world, self._message = world, message
        return world

    def pause(self):
        """Stop publishing until the next :meth:`set_world`."""
        with self._lock:
            self._message = None

    def _run(self):
        while not self._stop.wait(self.period):
            with self._lock:
                message = self._message
            if message is not None:
                message.header.stamp = self.node.get_clock().now().to_msg()
                self.publisher.publish(message)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2.0)


class AgentHarness:
    """
    sim_node + policy_node as processes, the policy active, a scene feed in this process.

    :param node: an rclpy node of this process, spun in a background thread
    :param env: extra environment of the children (ROS_DOMAIN_ID, ...)
    :param policy_args: extra ``-p name:=value`` of policy_node
    :param sim_args: extra ``--ros-args`` items of sim_node (remaps, parameters)
    :param log_dir: where the children's logs go (None: not written)
    """

    def __init__(self, node, env=None, policy_args=(), sim_args=(), log_dir=None,
                 model_path=''):
        from pathlib import Path
        self.node = node
        sim = [f'{k}:={str(v).lower() if isinstance(v, bool) else v}'
               for k, v in LIGHT_SIM.items()]
        log = (lambda name: Path(log_dir) / f'{name}.log') if log_dir else (lambda name: None)
        self.sim = ManagedProcess(
            [sys.executable, '-m', 'leo_ros.nodes.sim_node', '--ros-args',
             *[item for p in sim for item in ('-p', p)], *sim_args],
            name='sim_node', env=env, log_path=log('sim_node'))
        module = 'leo_ros.ros.harness' if model_path.startswith('pointing') else \
            'leo_ros.nodes.policy_node'
        self.policy = ManagedProcess(
            [sys.executable, '-m', module, '--ros-args', '-p',
             'device:=cpu', '-p', f"model_path:='{model_path}'",
             *[item for p in policy_args for item in ('-p', p)]],
            name='policy_node', env=env, log_path=log('policy_node'))
        self.feed = WorldSceneFeed(node)

    def start(self, timeout=240.0) -> str:
        """Bring the policy up and wait until it answers; return '' or what went wrong."""
        from leo_ros.ros.instruct_client import InstructClient
        from leo_ros.ros.lifecycle_client import change_node_state
        from lifecycle_msgs.srv import ChangeState
        probe = self.node.create_client(ChangeState, 'policy_node/change_state')
        up = wait_until(lambda: probe.service_is_ready() or not self.alive(), timeout, 0.2)
        self.node.destroy_client(probe)
        if not up or not self.alive():
            return (f'policy_node or sim_node did not come up:\n{self.policy.output[-3000:]}'
                    f'\n{self.sim.output[-2000:]}')
        for transition in ('configure', 'activate'):
            if not change_node_state(self.node, 'policy_node', transition, timeout)[0]:
                return f'policy_node did not {transition}:\n{self.policy.output[-3000:]}'
        client = InstructClient(self.node)
        if not client.wait(timeout):
            return 'leo/instruct never appeared'

        def answers():
            reply = client.call('how many tables are there?', timeout=60.0, spin=False)
            return 'model not ready' not in reply.error and 'not ready' not in reply.error
        if not wait_until(answers, timeout, period=1.0):
            return f'policy_node never answered:\n{self.policy.output[-3000:]}'
        return ''

    def reset_world(self, client, seed, family='', task_seed=0, timeout=30.0):
        """Reset sim_node to ``seed`` and feed its scene; return the sim/reset response."""
        from leo_ros.srv import ResetWorld
        self.feed.pause()
        reply = client.call(client.reset, ResetWorld.Request(
            seed=int(seed), task_family=family, task_seed=int(task_seed)), timeout)
        time.sleep(0.1)
        self.feed.set_world(seed)
        time.sleep(0.5)                      # a fresh scene reaches the policy
        return reply

    def alive(self) -> bool:
        return self.sim.poll() is None and self.policy.poll() is None

    def stop(self):
        self.feed.close()
        for process in (self.policy, self.sim):
            process.stop()


@contextmanager
def spun_node(name, num_threads=3):
    """
    Start rclpy and yield a node spun in a background thread; shut both down after.

    :param num_threads: MultiThreadedExecutor threads; 1: a SingleThreadedExecutor (less
        overhead per callback, for timing message arrivals)
    """
    import rclpy
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
    rclpy.init()
    node = rclpy.create_node(name)
    executor = SingleThreadedExecutor() if num_threads == 1 else \
        MultiThreadedExecutor(num_threads=num_threads)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        yield node
    finally:
        executor.shutdown()
        spinner.join(timeout=5)
        node.destroy_node()
        rclpy.try_shutdown()


def main(argv=None) -> int:
    """Run policy_node with the PointingPolicy (model_path 'pointing' or 'pointing:DELAY')."""
    from leo_ros.agent.stand_in_policies import load_pointing_policy
    from leo_ros.nodes import policy_node
    return policy_node.main(argv, load=load_pointing_policy)


if __name__ == '__main__':
    sys.exit(main())
