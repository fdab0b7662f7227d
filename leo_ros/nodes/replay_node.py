"""
replay_node: play a ROS 2 bag (MCAP) onto its topics with the recorded timing, and ``/clock``.

The messages are published as the CDR bytes the bag holds (no decoding), on publishers of the
recorded type and offered QoS. A topic whose type is not installed here, or whose encoding is
not CDR, is skipped and counted; a truncated or corrupt bag plays what could be read, and the
summary says what could not. ``leo-replay`` (leo_ros.tools.replay) is the command line.
"""

from collections import Counter
import signal
import sys
import threading
import time

from leo_ros.bags.mcap_bag import BagError, BagReader, QosProfile
from leo_ros.bags.replay import ReplayConfig, Schedule
from leo_ros.ros.conversions import message_class
from leo_ros.ros.qos import rclpy_qos
import numpy as np


#: a bag without a summary: its topics are read from this many seconds at its start
PRESCAN_SECONDS = 2.0
#: ``--wait-for-subscribers`` gives up after this long
SUBSCRIBER_TIMEOUT = 30.0


def prefetched(messages, stopping, depth=32):
    """
    Yield from ``messages`` while a thread reads ahead (up to ``depth`` items).

    Reading the next frames overlaps the waits between publishing the last ones.
    """
    import queue
    items = queue.Queue(maxsize=depth)
    done = object()
    closed = threading.Event()          # the consumer stopped early

    def read():
        try:
            for message in messages:
                while not (stopping.is_set() or closed.is_set()):
                    try:
                        items.put(message, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stopping.is_set() or closed.is_set():
                    return
        finally:
            while not closed.is_set():
                try:
                    items.put(done, timeout=0.1)
                    break
                except queue.Full:
                    continue

    thread = threading.Thread(target=read, name='bag-reader', daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                break
            yield item
    finally:
        closed.set()
        thread.join(timeout=1.0)


def publisher_qos(info):
    """Return the QoS to publish a bag topic with: the first recorded offered profile."""
    return rclpy_qos(info.qos[0] if info.qos else QosProfile())


class BagPlayer:
    """
    Play one bag file on a node.

    :param node: an rclpy Node that owns the publishers
    :param path: the ``.mcap`` file
    :param config: :class:`~leo_ros.bags.replay.ReplayConfig`
    :param progress: show a tqdm bar on stderr
    """

    def __init__(self, node, path, config: ReplayConfig = None, progress=True):
        self.node = node
        self.path = path
        self.config = config or ReplayConfig()
        self.progress = progress
        self.stopping = threading.Event()
        self.publishers = {}            # bag topic -> publisher, or None (skipped)
        self.published = Counter()      # bag topic -> messages published
        self.skipped = Counter()        # bag topic -> messages skipped
        self.skip_reasons = {}          # bag topic -> why
        self.lateness = []              # seconds behind schedule, per published message
        self.problems = []
        self.played_ns = 0              # bag time covered by the passes [ns]
        self.wall = 0.0                 # wall time from the first to the last publish [s]
        self.passes = 0
        self._clock_pub = None
        if self.config.clock:
            from rclpy.qos import QoSProfile
            from rosgraph_msgs.msg import Clock
            self._clock_pub = node.create_publisher(Clock, '/clock', QoSProfile(depth=10))

    # --- publishers -------------------------------------------------------------------------

    def publisher(self, info):
        """Return the publisher of a bag topic (created once), or None when it is skipped."""
        if info.topic in self.publishers:
            return self.publishers[info.topic]
        cls = message_class(info.type_name) if info.encoding == 'cdr' else None
        if cls is None:
            reason = f'encoding {info.encoding!r} is not cdr' if info.encoding != 'cdr' else \
                f'type {info.type_name or "(no schema)"!r} is not installed here'
            self.skip_reasons[info.topic] = reason
            self.node.get_logger().warning(f'skipping {info.topic}: {reason}')
            self.publishers[info.topic] = None
            return None
        output = self.config.output_topic(info.topic)
        self.publishers[info.topic] = self.node.create_publisher(cls, output,
                                                                 publisher_qos(info))
        return self.publishers[info.topic]

    def _prepare(self):
        """Create the publishers up front (a cut bag: those of its first seconds)."""
        reader = BagReader(self.path)
        summary = reader.summary()
        if summary is not None:
            topics = list(summary.topics.values())
        else:
            self.problems.append('no summary section (the bag may be truncated): topics were '
                                 f'taken from its first {PRESCAN_SECONDS:g} s')
            first = None
            for message in reader.messages():
                first = message.log_time if first is None else first
                if message.log_time - first > PRESCAN_SECONDS * 1e9:
                    break
            topics = list(reader.topics.values())
        for info in topics:
            if self.config.wanted(info.topic):
                self.publisher(info)
        return summary

    def _wait_for_discovery(self):
        """Wait ``delay``; with ``wait_for_subscribers``, first for a subscriber to appear."""
        if self.config.wait_for_subscribers:
            deadline = time.monotonic() + SUBSCRIBER_TIMEOUT
            publishers = [p for p in self.publishers.values() if p is not None]
            while not any(p.get_subscription_count() for p in publishers):
                if time.monotonic() > deadline or self.stopping.wait(0.05):
                    self.problems.append(f'no subscriber after {SUBSCRIBER_TIMEOUT:g} s; '
                                         'played anyway')
                    break
        self.stopping.wait(self.config.delay)      # the subscribers' side of discovery
        for topic, publisher in self.publishers.items():
            if publisher is not None:
                self.node.get_logger().info(
                    f'{topic}: {publisher.get_subscription_count()} subscriber(s) at the start')

    # --- playback ---------------------------------------------------------------------------

    def run(self):
        """Play the bag (every pass with ``loop``) until its end or :meth:`stop`."""
        summary = self._prepare()
        self._wait_for_discovery()
        bar = self._bar(summary)
        clock_offset = 0
        try:
            while not self.stopping.is_set():
                span = self._play_pass(bar, clock_offset)
                self.passes += 1
                if not self.config.loop or span is None:
                    break
                clock_offset += span + int(1e9 / self.config.clock_rate)
                if bar is not None:
                    bar.reset()
        finally:
            if bar is not None:
                bar.close()
            self._wait_for_acks()

    def _wait_for_acks(self, timeout=2.0):
        """Give reliable subscribers time to acknowledge the last messages before exiting."""
        from rclpy.duration import Duration
        deadline = time.monotonic() + timeout
        for publisher in self.publishers.values():
            if publisher is None or not hasattr(publisher, 'wait_for_all_acked'):
                continue
            left = max(deadline - time.monotonic(), 0.0)
            try:
                publisher.wait_for_all_acked(Duration(seconds=left))
            except Exception:  # best-effort publishers have nothing to wait for
                continue

    def _play_pass(self, bar, clock_offset):
        """Play the bag once; return the bag time it spanned [ns] (None if nothing played)."""
        reader = BagReader(self.path)
        schedule, origin, last, last_wall, position = None, None, None, 0.0, 0
        selected = self.config.topics or None
        for message in prefetched(reader.messages(topics=selected), self.stopping):
            if self.stopping.is_set():
                break
            origin = message.log_time if origin is None else origin
            if message.log_time < origin + int(self.config.start * 1e9):
                continue
            info = message.topic
            if not self.config.wanted(info.topic):
                continue
            publisher = self.publisher(info)
            if publisher is None:
                self.skipped[info.topic] += 1
                continue
            if schedule is None:
                schedule = Schedule(message.log_time, self.config.rate, time.monotonic(),
                                    clock_offset)
            due = schedule.due(message.log_time)
            if not self._wait(due, schedule):
                break
            self._publish_clock(message.log_time + clock_offset)
            publisher.publish(bytes(message.data))
            self.lateness.append(max(time.monotonic() - due, 0.0))
            self.published[info.topic] += 1
            last, last_wall = message.log_time, time.monotonic()
            if bar is not None:
                position = self._advance(bar, reader, schedule, message, position)
        for problem in reader.problems:
            if problem not in self.problems:
                self.problems.append(problem)
        if schedule is None or last is None:
            return None
        self.played_ns += last - schedule.first_ns
        self.wall += last_wall - schedule.wall_start
        return last - schedule.first_ns

    def _wait(self, due, schedule):
        """Sleep until wall time ``due``, ticking ``/clock``; False when stopped meanwhile."""
        period = 1.0 / self.config.clock_rate
        while True:
            now = time.monotonic()
            if now >= due:
                return not self.stopping.is_set()
            if self._clock_pub is not None:
                self._publish_clock(schedule.bag_time(now))
            if self.stopping.wait(min(due - now, period)):
                return False

    def _publish_clock(self, nanoseconds):
        if self._clock_pub is None:
            return
        from rosgraph_msgs.msg import Clock
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(int(nanoseconds), 1_000_000_000)
        self._clock_pub.publish(msg)

    def stop(self):
        """Stop playing (from a signal handler or another thread)."""
        self.stopping.set()

    # --- progress and summary ---------------------------------------------------------------

    def _bar(self, summary):
        if not self.progress:
            return None
        from tqdm import tqdm
        if summary is not None and summary.duration > 0:
            total = max(summary.duration - self.config.start, 0.0)
            return tqdm(total=round(total, 1), unit='s', desc='leo-replay', file=sys.stderr,
                        bar_format='{l_bar}{bar}| {n:.1f}/{total:.1f} s bag time '
                                   '[{elapsed}<{remaining}]{postfix}')
        return tqdm(total=BagReader(self.path).size, unit='B', unit_scale=True,
                    desc='leo-replay', file=sys.stderr)

    def _advance(self, bar, reader, schedule, message, position):
        if bar.unit == 's':
            target = round((message.log_time - schedule.first_ns) * 1e-9, 1)
            if target > bar.n:
                bar.update(target - bar.n)
                bar.set_postfix(messages=sum(self.published.values()), refresh=False)
            return position
        if reader.position > position:
            bar.update(reader.position - position)
            return reader.position
        return position

    def summary_lines(self):
        """Return a readable summary and, as the last line, ``key=value`` pairs."""
        lines = []
        for topic in sorted(set(self.published) | set(self.skipped)):
            if self.published[topic]:
                lines.append(f'  {topic}: {self.published[topic]} published')
            if self.skipped[topic]:
                lines.append(f'  {topic}: {self.skipped[topic]} skipped '
                             f'({self.skip_reasons.get(topic, "")})')
        lines += [f'  problem: {p}' for p in self.problems]
        late = np.asarray(self.lateness) * 1e3
        played = self.played_ns * 1e-9
        realtime = played / self.wall if self.wall > 0 else 0.0
        lines.append(
            f'published={sum(self.published.values())} skipped={sum(self.skipped.values())} '
            f'problems={len(self.problems)} bag_s={played:.2f} wall_s={self.wall:.2f} '
            f'realtime_factor={realtime / self.config.rate:.3f} '
            f'late_p50_ms={np.percentile(late, 50) if len(late) else 0:.1f} '
            f'late_p95_ms={np.percentile(late, 95) if len(late) else 0:.1f}')
        return lines


def run_replay(path, config: ReplayConfig, progress=True, node_name='leo_replay') -> int:
    """
    Play ``path`` in this process (rclpy initialised here); print the summary.

    :return: exit status: 0 played, 1 nothing could be played, 2 not a bag
    """
    try:
        BagReader(path)
    except BagError as error:
        print(f'leo-replay: {error}', file=sys.stderr)
        return 2
    from leo_ros.ros.env import apply_ros_environment
    apply_ros_environment()
    import rclpy
    rclpy.init()
    node = rclpy.create_node(node_name)
    player = BagPlayer(node, path, config, progress=progress)
    previous = signal.signal(signal.SIGTERM, lambda *_: player.stop())
    try:
        player.run()
    except KeyboardInterrupt:
        player.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
        lines = player.summary_lines()
        node.destroy_node()
        rclpy.try_shutdown()
    print(f'leo-replay: {path}', flush=True)
    print('\n'.join(lines), flush=True)
    return 0 if sum(player.published.values()) else 1
