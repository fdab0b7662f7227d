"""
What ``leo-replay`` plays and when (pure Python, no rclpy).

The schedule follows ``ros2 bag play``: a message received ``t`` seconds after the bag's first
played message is published ``t / rate`` seconds after playback starts. ``/clock`` carries the
bag's own receive time, so nodes with ``use_sim_time`` see the recording's time. With
``loop`` each pass adds the bag's length to ``/clock``, which therefore never runs backwards
(message stamps stay as recorded).
"""

from dataclasses import dataclass, field

#: the agent's inputs: what a fresh agent needs from a bag (``leo-replay --inputs``)
AGENT_INPUTS = ('/camera/points', '/camera/image', '/camera/depth', '/camera/camera_info',
                '/camera/pose', '/odom', '/tf', '/tf_static')


def absolute_topic(name: str) -> str:
    """Return ``name`` with one leading slash (bags store absolute names)."""
    name = str(name).strip()
    if not name or name.strip('/') == '':
        raise ValueError(f'not a topic name: {name!r}')
    return '/' + name.lstrip('/')


def parse_remap(text: str):
    """
    Parse ``FROM:=TO`` into absolute ``(from, to)`` topic names.

    :raise ValueError: naming the text when it is not of that form
    """
    source, separator, target = str(text).partition(':=')
    if not separator or not source.strip() or not target.strip():
        raise ValueError(f'a remap is FROM:=TO, got {text!r}')
    return absolute_topic(source), absolute_topic(target)


@dataclass
class ReplayConfig:
    """
    How to play a bag.

    :param rate: playback speed (1 = recorded timing)
    :param loop: start again at the end, until stopped
    :param start: skip this many seconds at the bag's start [s]
    :param topics: topics to play (empty: every topic)
    :param remaps: (from, to) pairs of absolute topic names
    :param delay: wait this long after creating the publishers, before playing [s]
    :param clock: publish ``/clock``
    :param clock_rate: ``/clock`` messages per second of wall time [Hz]
    :param wait_for_subscribers: before playing, wait until one of the played topics has a
        subscriber (at most 30 s), then ``delay``
    """

    rate: float = 1.0
    loop: bool = False
    start: float = 0.0
    topics: tuple = ()
    remaps: tuple = ()
    delay: float = 1.0
    clock: bool = True
    clock_rate: float = 100.0
    wait_for_subscribers: bool = False
    _remap: dict = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if not 0.01 <= float(self.rate) <= 100.0:
            raise ValueError(f'ReplayConfig.rate must be in [0.01, 100], got {self.rate}')
        if float(self.start) < 0:
            raise ValueError(f'ReplayConfig.start must be >= 0 s, got {self.start}')
        if float(self.delay) < 0:
            raise ValueError(f'ReplayConfig.delay must be >= 0 s, got {self.delay}')
        if not 1.0 <= float(self.clock_rate) <= 1000.0:
            raise ValueError(f'ReplayConfig.clock_rate must be in [1, 1000] Hz, '
                             f'got {self.clock_rate}')
        self.topics = tuple(absolute_topic(t) for t in self.topics)
        remaps = [parse_remap(r) if isinstance(r, str) else tuple(r) for r in self.remaps]
        self.remaps = tuple((absolute_topic(a), absolute_topic(b)) for a, b in remaps)
        self._remap = dict(self.remaps)

    def wanted(self, topic: str) -> bool:
        """Return True when the bag topic ``topic`` is played (``/clock`` never is)."""
        topic = absolute_topic(topic)
        if topic == '/clock':
            return False          # leo-replay publishes its own clock
        return not self.topics or topic in self.topics

    def output_topic(self, topic: str) -> str:
        """Return the topic a bag topic is published on, after remapping."""
        topic = absolute_topic(topic)
        return self._remap.get(topic, topic)


class Schedule:
    """
    Map bag time to wall time for one pass.

    :param first_ns: receive time of the first played message [ns]
    :param rate: playback speed
    :param wall_start: wall time [s] (``time.monotonic()``) the pass starts at
    :param clock_offset_ns: added to bag time on ``/clock`` (loops: the passes before)
    """

    def __init__(self, first_ns: int, rate: float, wall_start: float, clock_offset_ns: int = 0):
        self.first_ns = int(first_ns)
        self.rate = float(rate)
        self.wall_start = float(wall_start)
        self.clock_offset_ns = int(clock_offset_ns)

    def due(self, log_time_ns: int) -> float:
        """Return the wall time [s] the message received at ``log_time_ns`` is published."""
        return self.wall_start + (int(log_time_ns) - self.first_ns) * 1e-9 / self.rate

    def bag_time(self, wall: float) -> int:
        """Return the bag time [ns] at wall time ``wall`` (for ``/clock``)."""
        elapsed = max(float(wall) - self.wall_start, 0.0)
        return self.first_ns + int(elapsed * self.rate * 1e9) + self.clock_offset_ns
