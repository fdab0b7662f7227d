"""
record_node: record ROS 2 topics into one MCAP bag, as rosbag2's MCAP storage writes it.

Topics are found as they appear (the graph is polled every ``discovery_period``) and
subscribed with raw (serialised) messages and the QoS their publishers offer. Callbacks only
append the bytes to a queue; a writer thread writes them (leo_ros.bags.mcap_bag.BagWriter).
Topics of types not installed here are listed and skipped; when the writer falls behind by
more than ``max_pending_mb`` messages are dropped and counted. Ctrl-C (SIGINT) or SIGTERM
closes the bag properly. ``leo-record`` (leo_ros.tools.record) is the command line.
"""

from collections import Counter, deque
from functools import partial
import signal
import sys
import threading
import time

from leo_ros.bags.mcap_bag import BagWriter, QosProfile
from leo_ros.bags.record import RecordConfig, subscription_qos
from leo_ros.ros.conversions import message_class
from leo_ros.ros.qos import rclpy_qos


def offered_profiles(node, topic):
    """Return the :class:`QosProfile` each publisher of ``topic`` offers."""
    profiles = []
    for info in node.get_publishers_info_by_topic(topic):
        qos = info.qos_profile

        def word(policy, default):
            name = getattr(policy, 'name', '') or ''
            return name.lower() or default
        profiles.append(QosProfile(
            history=word(qos.history, 'keep_last'), depth=int(qos.depth or 0),
            reliability=word(qos.reliability, 'reliable'),
            durability=word(qos.durability, 'volatile'),
            deadline_ns=int(qos.deadline.nanoseconds), lifespan_ns=int(qos.lifespan.nanoseconds),
            liveliness=word(qos.liveliness, 'automatic'),
            liveliness_lease_ns=int(qos.liveliness_lease_duration.nanoseconds),
            avoid_ros_namespace_conventions=bool(qos.avoid_ros_namespace_conventions)))
    return profiles


class BagRecorder:
    """
    Subscribe to the wanted topics of ``node`` and write what arrives.

    :param node: an rclpy Node (its clock stamps the messages: system time, or /clock with
        use_sim_time)
    :param config: :class:`~leo_ros.bags.record.RecordConfig`
    """

    def __init__(self, node, config: RecordConfig):
        self.node = node
        self.config = config
        self.writer = BagWriter(config.path, compression=config.compression,
                                overwrite=config.overwrite)
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.done = threading.Event()
        self.queue = deque()            # ('topic', name, type, qos) or ('msg', name, data, t)
        self.pending_bytes = 0
        self.subscriptions = {}         # topic -> subscription
        self.unknown = {}               # topic -> type that is not installed
        self.received = Counter()
        self.dropped = Counter()
        self.written_bytes = 0
        self.error = ''
        self.started = time.monotonic()
        node.create_timer(config.discovery_period, self.discover)
        self.thread = threading.Thread(target=self._write_loop, name='bag-writer', daemon=True)
        self.thread.start()
        self.discover()

    # --- discovery (timer) and messages (callbacks): only enqueue -------------------------

    def discover(self):
        """Subscribe to wanted topics that have appeared since the last look."""
        namespace = self.node.get_namespace()
        for topic, types in self.node.get_topic_names_and_types():
            if topic in self.subscriptions or topic in self.unknown or not types:
                continue
            if not self.config.wanted(topic, namespace):
                continue
            type_name = types[0]
            cls = message_class(type_name)
            if cls is None:
                self.unknown[topic] = type_name
                self.node.get_logger().warning(f'not recording {topic}: type {type_name} is '
                                               'not installed here')
                continue
            offered = offered_profiles(self.node, topic)
            with self.lock:
                self.queue.append(('topic', topic, type_name, offered))
            self.subscriptions[topic] = self.node.create_subscription(
                cls, topic, partial(self._on_message, topic),
                rclpy_qos(subscription_qos(offered)), raw=True)
            self.wake.set()

    def _on_message(self, topic, data):
        stamp = self.node.get_clock().now().nanoseconds
        size = len(data)
        with self.lock:
            self.received[topic] += 1
            if self.pending_bytes + size > self.config.max_pending_mb * 1e6:
                self.dropped[topic] += 1
                return
            self.pending_bytes += size
            self.queue.append(('msg', topic, data, stamp))
        self.wake.set()

    # --- writer thread --------------------------------------------------------------------

    def _write_loop(self):
        while True:
            self.wake.wait(0.2)
            with self.lock:
                items, self.queue = self.queue, deque()
                self.wake.clear()
            for item in items:
                self._write(item)
            if self.done.is_set():
                with self.lock:
                    if not self.queue:
                        return

    def _write(self, item):
        try:
            if item[0] == 'topic':
                self.writer.add_topic(item[1], item[2], item[3])
                return
            _, topic, data, stamp = item
            self.writer.write(topic, data, stamp)
            self.written_bytes += len(data)
        except Exception as error:  # a full disk must not kill the node: count and go on
            self.error = f'{type(error).__name__}: {error}'
            if item[0] == 'msg':
                self.dropped[item[1]] += 1
        finally:
            if item[0] == 'msg':
                with self.lock:
                    self.pending_bytes -= len(item[2])

    def close(self, timeout=30.0):
        """Write what is queued, then the summary and metadata; close the file."""
        for subscription in self.subscriptions.values():
            try:
                self.node.destroy_subscription(subscription)
            except Exception:  # the context may be shut down already (Ctrl-C): nothing to do
                pass
        self.done.set()
        self.wake.set()
        self.thread.join(timeout)
        self.writer.close()

    def status(self) -> str:
        """Return one line: messages, megabytes, topics, drops."""
        return (f'{self.writer.message_count} messages, {self.written_bytes / 1e6:.1f} MB, '
                f'{len(self.writer.topics)} topics, {sum(self.dropped.values())} dropped')

    def summary_lines(self):
        """Return a readable summary and, as the last line, ``key=value`` pairs."""
        lines = [f'  {t}: {info.count} messages ({info.type_name})'
                 for t, info in sorted(self.writer.topics.items())]
        lines += [f'  {t}: not recorded, type {k} not installed' for t, k in
                  sorted(self.unknown.items())]
        lines += [f'  {t}: {n} dropped (writer behind)' for t, n in sorted(self.dropped.items())]
        if self.error:
            lines.append(f'  write error: {self.error}')
        lines.append(f'messages={self.writer.message_count} topics={len(self.writer.topics)} '
                     f'dropped={sum(self.dropped.values())} unknown_types={len(self.unknown)} '
                     f'megabytes={self.written_bytes / 1e6:.1f} '
                     f'seconds={time.monotonic() - self.started:.1f}')
        return lines


def run_record(config: RecordConfig, progress=True, use_sim_time=False,
               node_name='leo_record', ros_args=None) -> int:
    """
    Record until Ctrl-C, SIGTERM or ``config.max_duration``; print the summary.

    :return: exit status: 0 recorded, 1 nothing was recorded
    """
    from leo_ros.ros.env import apply_ros_environment
    apply_ros_environment()
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.parameter import Parameter
    rclpy.init(args=ros_args)
    overrides = [Parameter('use_sim_time', Parameter.Type.BOOL, True)] if use_sim_time else []
    node = rclpy.create_node(node_name, parameter_overrides=overrides)
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    recorder = BagRecorder(node, config)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(desc='leo-record', bar_format='{desc}: {postfix} [{elapsed}]',
                   file=sys.stderr)
    print(f'leo-record: recording into {config.path}', flush=True)
    try:
        while rclpy.ok() and not stopping.is_set():
            executor.spin_once(timeout_sec=0.1)
            if config.max_duration and time.monotonic() - recorder.started > config.max_duration:
                break
            if bar is not None:
                bar.set_postfix_str(recorder.status())
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        recorder.close()
        if bar is not None:
            bar.set_postfix_str(recorder.status())
            bar.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    print(f'leo-record: wrote {config.path}', flush=True)
    print('\n'.join(recorder.summary_lines()), flush=True)
    return 0 if recorder.writer.message_count else 1
