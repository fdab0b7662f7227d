"""
What ``leo-record`` records and how it subscribes (pure Python, no rclpy).

By default the agent's inputs and outputs: the camera topics, odometry and tf it reads, and
the instructions, answers, action tokens, goals, velocity and manipulator commands, object
tokens, markers and diagnostics it writes. Relative names are resolved in the recorder's
namespace, like the agent's own topics.
"""

from dataclasses import dataclass
from pathlib import Path

from leo_ros.bags.mcap_bag import QosProfile
from leo_ros.bags.replay import absolute_topic, AGENT_INPUTS

#: the agent's outputs (relative names: the agent's namespace applies)
AGENT_OUTPUTS = ('leo/instruction', 'leo/response', 'leo/action_tokens', 'goal_pose',
                 'cmd_vel', 'leo/manipulator_command', 'leo/scene_objects',
                 'leo/scene_markers', '/diagnostics')
#: what ``leo-record`` records without a topic list
DEFAULT_TOPICS = tuple(t.lstrip('/') if t not in ('/tf', '/tf_static') else t
                       for t in AGENT_INPUTS) + AGENT_OUTPUTS


@dataclass
class RecordConfig:
    """
    How to record.

    :param path: the ``.mcap`` file to write
    :param topics: topic names (relative ones in the recorder's namespace)
    :param all_topics: record every topic that appears (``topics`` ignored)
    :param exclude: absolute topic names never recorded
    :param compression: 'none', 'zstd' or 'lz4' chunk compression
    :param max_pending_mb: messages not yet written may hold this much memory; more are
        dropped and counted
    :param discovery_period: how often new topics are looked for [s]
    :param max_duration: stop after this long [s] (0: until stopped)
    :param overwrite: replace an existing file
    """

    path: str = ''
    topics: tuple = DEFAULT_TOPICS
    all_topics: bool = False
    exclude: tuple = ()
    compression: str = 'none'
    max_pending_mb: float = 512.0
    discovery_period: float = 0.25
    max_duration: float = 0.0
    overwrite: bool = False

    def __post_init__(self):
        if not str(self.path).endswith('.mcap'):
            raise ValueError(f'RecordConfig.path must be an .mcap file, got {self.path!r}')
        if Path(self.path).exists() and not self.overwrite:
            raise ValueError(f'RecordConfig.path {self.path} exists already (use --overwrite)')
        if not self.all_topics and not self.topics:
            raise ValueError('RecordConfig.topics is empty and all_topics is off: nothing '
                             'to record')
        if self.compression not in ('none', 'zstd', 'lz4'):
            raise ValueError(f'RecordConfig.compression must be none, zstd or lz4, '
                             f'got {self.compression!r}')
        for name in ('max_pending_mb', 'discovery_period'):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f'RecordConfig.{name} must be > 0, got {getattr(self, name)}')
        if float(self.max_duration) < 0:
            raise ValueError(f'RecordConfig.max_duration must be >= 0, got {self.max_duration}')
        self.topics = tuple(str(t) for t in self.topics)
        self.exclude = tuple(absolute_topic(t) for t in self.exclude)

    def resolved_topics(self, namespace: str = '/'):
        """Return the absolute names of :attr:`topics` in ``namespace``."""
        prefix = '/' + str(namespace or '/').strip('/')
        resolved = []
        for topic in self.topics:
            name = topic if topic.startswith('/') else f'{prefix.rstrip("/")}/{topic}'
            name = absolute_topic(name)
            if name not in resolved:
                resolved.append(name)
        return resolved

    def wanted(self, topic: str, namespace: str = '/') -> bool:
        """Return True when ``topic`` (absolute) is to be recorded."""
        if topic in self.exclude:
            return False
        return self.all_topics or topic in self.resolved_topics(namespace)


def subscription_qos(offered) -> QosProfile:
    """
    Return the QoS to subscribe with, given the publishers' offered profiles (as rosbag2 does).

    Reliable only when every publisher is reliable (a reliable subscription receives nothing
    from a best-effort publisher); transient-local only when every publisher is.
    """
    offered = list(offered)
    reliable = bool(offered) and all(p.reliability == 'reliable' for p in offered)
    latched = bool(offered) and all(p.durability == 'transient_local' for p in offered)
    return QosProfile(depth=10, reliability='reliable' if reliable else 'best_effort',
                      durability='transient_local' if latched else 'volatile')
