"""
ROS 2 bags as rosbag2 writes them to MCAP, through the ``mcap`` library (no rclpy).

What rosbag2's MCAP storage plugin writes, and so what :class:`BagWriter` writes:

- the MCAP header's profile is ``ros2``;
- one schema per message type, named ``pkg/msg/Type``, encoding ``ros2msg`` (the complete
  definition, :mod:`leo_ros.bags.definitions`);
- one channel per topic, message encoding ``cdr``, with the metadata ``offered_qos_profiles``
  (YAML of the publishers' QoS) and ``topic_type_hash``;
- messages are the CDR bytes ROS serialises, ``log_time`` the receive time [ns],
  ``publish_time`` the send time [ns] and ``sequence`` a per-topic count;
- a metadata record ``rosbag2`` whose ``serialized_metadata`` is the bag's ``metadata.yaml``
  (version 9: topics with message counts and QoS, duration, start, files, ROS distribution).

:class:`BagReader` streams any MCAP bag record by record, so a truncated file plays up to its
last complete chunk and a chunk whose checksum fails is skipped; what went wrong is kept in
:attr:`BagReader.problems`, nothing raises while messages are read.
"""

from dataclasses import dataclass, field
from pathlib import Path

from leo_ros.bags.definitions import definition_or_empty, MessageDefinition

#: rosbag2 metadata version written (Jazzy and later write 9)
METADATA_VERSION = 9
#: a Duration that means "not set" in rosbag2's QoS YAML (rmw's infinite duration)
INFINITE_NS = 9223372036854775807
#: the largest MCAP record the reader loads (a corrupt length must not exhaust memory)
RECORD_SIZE_LIMIT = 1 << 30
#: after this many unreadable records in one file the reader stops
MAX_RESUMES = 20


class BagError(ValueError):
    """A file that cannot be read or written as a ROS 2 bag; the message says why."""


@dataclass(frozen=True)
class QosProfile:
    """One publisher's offered QoS, in rosbag2's words ('reliable', 'best_effort', ...)."""

    history: str = 'keep_last'
    depth: int = 10
    reliability: str = 'reliable'
    durability: str = 'volatile'
    deadline_ns: int = INFINITE_NS
    lifespan_ns: int = INFINITE_NS
    liveliness: str = 'automatic'
    liveliness_lease_ns: int = INFINITE_NS
    avoid_ros_namespace_conventions: bool = False

    def to_rosbag2(self) -> dict:
        """Return the profile as rosbag2's metadata version 9 writes it."""
        def duration(ns):
            ns = min(max(int(ns), 0), INFINITE_NS)
            return {'sec': ns // 1_000_000_000, 'nsec': ns % 1_000_000_000}
        return {'history': self.history, 'depth': int(self.depth),
                'reliability': self.reliability, 'durability': self.durability,
                'deadline': duration(self.deadline_ns), 'lifespan': duration(self.lifespan_ns),
                'liveliness': self.liveliness,
                'liveliness_lease_duration': duration(self.liveliness_lease_ns),
                'avoid_ros_namespace_conventions': bool(self.avoid_ros_namespace_conventions)}

    @classmethod
    def from_rosbag2(cls, entry) -> 'QosProfile':
        """Read one profile of rosbag2's YAML (versions 8 and 9; unknown keys ignored)."""
        entry = entry if isinstance(entry, dict) else {}

        def nanoseconds(value):
            if not isinstance(value, dict):
                return INFINITE_NS
            return int(value.get('sec', 0)) * 1_000_000_000 + int(value.get('nsec', 0))

        def word(key, default):
            value = entry.get(key, default)
            if isinstance(value, int) and not isinstance(value, bool):   # version 8: rmw enums
                return RMW_ENUMS[key].get(value, default)
            return str(value).lower() if value else default
        return cls(history=word('history', 'keep_last'), depth=int(entry.get('depth', 10) or 0),
                   reliability=word('reliability', 'reliable'),
                   durability=word('durability', 'volatile'),
                   deadline_ns=nanoseconds(entry.get('deadline')),
                   lifespan_ns=nanoseconds(entry.get('lifespan')),
                   liveliness=word('liveliness', 'automatic'),
                   liveliness_lease_ns=nanoseconds(entry.get('liveliness_lease_duration')),
                   avoid_ros_namespace_conventions=bool(
                       entry.get('avoid_ros_namespace_conventions', False)))


#: rosbag2 metadata version 8 writes rmw's enum numbers
RMW_ENUMS = {
    'history': {0: 'system_default', 1: 'keep_last', 2: 'keep_all'},
    'reliability': {0: 'system_default', 1: 'reliable', 2: 'best_effort'},
    'durability': {0: 'system_default', 1: 'transient_local', 2: 'volatile'},
    'liveliness': {0: 'system_default', 1: 'automatic', 3: 'manual_by_topic'},
}


def dump_qos(profiles) -> str:
    """Return the YAML text of a channel's ``offered_qos_profiles`` ('' for none)."""
    import yaml
    profiles = list(profiles)
    if not profiles:
        return ''
    return yaml.safe_dump([p.to_rosbag2() for p in profiles], default_flow_style=False,
                          sort_keys=False)


def parse_qos(text) -> list:
    """Return the :class:`QosProfile` list of an ``offered_qos_profiles`` text ([] if none)."""
    import yaml
    if not text:
        return []
    try:
        entries = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    return [QosProfile.from_rosbag2(e) for e in entries] if isinstance(entries, list) else []


@dataclass
class TopicInfo:
    """One topic of a bag: its channel, type and what was written or read."""

    topic: str
    type_name: str                      # 'sensor_msgs/msg/PointCloud2' ('' if no schema)
    encoding: str = 'cdr'               # message encoding
    qos: list = field(default_factory=list)     # QosProfile, as offered by the publishers
    type_hash: str = ''
    schema_encoding: str = ''           # 'ros2msg', 'ros2idl' or '' (no definition)
    channel_id: int = 0
    count: int = 0


@dataclass
class BagMessage:
    """One message as read from a bag: the CDR bytes and their topic."""

    topic: TopicInfo
    data: bytes
    log_time: int                       # receive time [ns]
    publish_time: int                   # send time [ns]
    sequence: int = 0


class BagWriter:
    """
    Write a ROS 2 bag to one MCAP file, as rosbag2's MCAP storage does.

    :param path: output file (``.mcap``); an existing file is refused unless ``overwrite``
    :param compression: 'none' (rosbag2's default), 'zstd' or 'lz4' chunk compression
    :param chunk_size: bytes per chunk before it is written out
    :param ros_distro: written into the metadata (default: this installation's)
    """

    def __init__(self, path, compression='none', chunk_size=1 << 20, ros_distro=None,
                 overwrite=False):
        from mcap.writer import CompressionType, Writer

        kinds = {'none': CompressionType.NONE, 'zstd': CompressionType.ZSTD,
                 'lz4': CompressionType.LZ4}
        if compression not in kinds:
            raise BagError(f'compression must be one of {sorted(kinds)}, got {compression!r}')
        if int(chunk_size) < 1024:
            raise BagError(f'chunk_size must be >= 1024 bytes, got {chunk_size}')
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise BagError(f'{self.path} exists already; not overwriting it')
        if ros_distro is None:
            from leo_ros.ros.env import ros_distro as installed
            ros_distro = installed()
        self.ros_distro = ros_distro
        self.compression = compression
        self._stream = open(self.path, 'wb')
        self._writer = Writer(self._stream, chunk_size=int(chunk_size),
                              compression=kinds[compression])
        self._writer.start(profile='ros2', library=_library())
        self.topics = {}                # topic -> TopicInfo
        self._schemas = {}              # type name -> schema id
        self.start_ns = None
        self.end_ns = None
        self.closed = False

    def add_topic(self, topic, type_name, qos=(), definition: MessageDefinition = None):
        """
        Register a topic (once) and return its :class:`TopicInfo`.

        :param type_name: 'pkg/msg/Type'
        :param qos: the publishers' offered :class:`QosProfile` list
        :param definition: the type's definition (default: looked up in the install)
        """
        if topic in self.topics:
            return self.topics[topic]
        definition = definition or definition_or_empty(type_name)
        if definition.name not in self._schemas:
            self._schemas[definition.name] = self._writer.register_schema(
                name=definition.name, encoding=definition.encoding,
                data=definition.text.encode())
        qos = list(qos)
        channel = self._writer.register_channel(
            topic=topic, message_encoding='cdr', schema_id=self._schemas[definition.name],
            metadata={'offered_qos_profiles': dump_qos(qos),
                      'topic_type_hash': definition.type_hash})
        info = TopicInfo(topic=topic, type_name=definition.name, qos=qos,
                         type_hash=definition.type_hash, schema_encoding=definition.encoding,
                         channel_id=channel)
        self.topics[topic] = info
        return info

    def write(self, topic, data, log_time, publish_time=None):
        """
        Append one serialised message.

        :param topic: a topic added with :meth:`add_topic`
        :param data: CDR bytes
        :param log_time: receive time [ns]
        :param publish_time: send time [ns] (default: ``log_time``)
        """
        info = self.topics.get(topic)
        if info is None:
            raise BagError(f'topic {topic!r} was not added to the bag')
        log_time = int(log_time)
        self._writer.add_message(info.channel_id, log_time, bytes(data),
                                 int(log_time if publish_time is None else publish_time),
                                 sequence=info.count)
        info.count += 1
        self.start_ns = log_time if self.start_ns is None else min(self.start_ns, log_time)
        self.end_ns = log_time if self.end_ns is None else max(self.end_ns, log_time)

    @property
    def message_count(self) -> int:
        """Return the number of messages written so far."""
        return sum(info.count for info in self.topics.values())

    def metadata(self) -> dict:
        """Return what rosbag2 writes as ``metadata.yaml`` for the messages written so far."""
        start = self.start_ns or 0
        duration = 0 if self.start_ns is None else self.end_ns - self.start_ns
        count = self.message_count
        topics = [{'topic_metadata': {'name': info.topic, 'type': info.type_name,
                                      'serialization_format': info.encoding,
                                      'offered_qos_profiles': [p.to_rosbag2() for p in info.qos],
                                      'type_description_hash': info.type_hash},
                   'message_count': info.count} for info in self.topics.values()]
        return {'rosbag2_bagfile_information': {
            'version': METADATA_VERSION, 'storage_identifier': 'mcap',
            'duration': {'nanoseconds': duration},
            'starting_time': {'nanoseconds_since_epoch': start},
            'message_count': count, 'topics_with_message_count': topics,
            'compression_format': '', 'compression_mode': '',
            'relative_file_paths': [self.path.name],
            'files': [{'path': self.path.name,
                       'starting_time': {'nanoseconds_since_epoch': start},
                       'duration': {'nanoseconds': duration}, 'message_count': count}],
            'custom_data': {}, 'ros_distro': self.ros_distro}}

    def close(self):
        """Write the metadata record and the summary, and close the file (idempotent)."""
        if self.closed:
            return
        import yaml
        self.closed = True
        try:
            self._writer.add_metadata('rosbag2', {'serialized_metadata': yaml.safe_dump(
                self.metadata(), default_flow_style=False, sort_keys=False)})
            self._writer.finish()
        finally:
            self._stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _library() -> str:
    from importlib import metadata
    try:
        return f'leo_ros {metadata.version("leo_ros")}; mcap {metadata.version("mcap")}'
    except metadata.PackageNotFoundError:
        return 'leo_ros'


class BagReader:
    """
    Read a ROS 2 MCAP bag record by record, surviving truncation and corruption.

    :param path: an ``.mcap`` file
    :param validate_crcs: check each chunk's CRC (a corrupt chunk is skipped, not played)
    :raise BagError: when the file does not exist or is not MCAP at all
    """

    def __init__(self, path, validate_crcs=True):
        self.path = Path(path)
        self.validate_crcs = validate_crcs
        if not self.path.is_file():
            raise BagError(f'no bag at {self.path}')
        self.size = self.path.stat().st_size
        with open(self.path, 'rb') as stream:
            magic = stream.read(8)
        if magic != b'\x89MCAP0\r\n':
            raise BagError(f'{self.path} is not an MCAP file (it starts with {magic[:8]!r})')
        self.profile = ''
        self.library = ''
        self.topics = {}                # topic -> TopicInfo (as channels are read)
        self.metadata = {}              # rosbag2 serialized metadata, when read
        self.problems = []              # what could not be read, one line each
        self.position = 0               # bytes read so far (for progress)
        self.complete = False           # True once the footer was read

    def summary(self):
        """
        Return the topics and message counts from the file's summary section, or None.

        A truncated file has no summary; :meth:`messages` still reads what it holds.
        """
        from mcap.reader import SeekingReader
        try:
            with open(self.path, 'rb') as stream:
                reader = SeekingReader(stream, record_size_limit=RECORD_SIZE_LIMIT)
                header = reader.get_header()
                summary = reader.get_summary()
                if summary is None:
                    return None
                metadata = self._rosbag2_metadata(reader)
        except Exception as error:  # mcap raises several types for broken files
            self.problems.append(f'no readable summary ({type(error).__name__}: {error})')
            return None
        self.profile, self.library = header.profile, header.library
        self.metadata = metadata or self.metadata
        counts = summary.statistics.channel_message_counts if summary.statistics else {}
        topics = {}
        for channel in summary.channels.values():
            info = _topic_info(channel, summary.schemas.get(channel.schema_id))
            info.count = int(counts.get(channel.id, 0))
            topics[channel.topic] = info
        statistics = summary.statistics
        return BagSummary(topics=topics, profile=header.profile, library=header.library,
                          start_ns=statistics.message_start_time if statistics else 0,
                          end_ns=statistics.message_end_time if statistics else 0,
                          message_count=statistics.message_count if statistics else 0,
                          metadata=self.metadata)

    def _rosbag2_metadata(self, reader):
        """Return the first readable rosbag2 metadata of a seeking reader ({} if none)."""
        parsed = (self._parse_metadata(record) for record in reader.iter_metadata())
        return next((m for m in parsed if m is not None), {})

    def messages(self, topics=None, start_ns=None):
        """
        Yield :class:`BagMessage` in file order (rosbag2's default order).

        :param topics: topic names to yield (None: all)
        :param start_ns: skip messages received before this time [ns]
        """
        from mcap.stream_reader import StreamReader

        state = {'wanted': None if topics is None else set(topics), 'start': start_ns,
                 'schemas': {}, 'channels': {}}
        with open(self.path, 'rb') as stream:
            skip_magic, resumes, last_failure = False, 0, None
            while True:
                # Chunks come whole and are checked here (their CRC), so that a corrupt one
                # is skipped without losing the stream.
                reader = StreamReader(stream, skip_magic=skip_magic, emit_chunks=True,
                                      record_size_limit=RECORD_SIZE_LIMIT)
                try:
                    for record in reader.records:
                        self.position = stream.tell()
                        yield from self._records(record, state)
                    self.position = self.size
                    return
                except Exception as error:  # truncated or corrupt data: several types
                    at = stream.tell()
                    self.position = at
                    if at >= self.size or at == last_failure or resumes >= MAX_RESUMES:
                        self.problems.append(_describe(error, at, self.size))
                        return
                    self.problems.append(_describe(error, at, self.size) + '; skipped')
                    skip_magic, resumes, last_failure = True, resumes + 1, at

    def _records(self, record, state):
        """Yield the messages of one top-level record (a chunk holds many)."""
        from mcap.records import Channel, Chunk, Footer, Header, Message, Metadata, Schema
        from mcap.stream_reader import breakup_chunk
        if isinstance(record, Chunk):
            try:
                inner = breakup_chunk(record, validate_crc=self.validate_crcs)
            except Exception as error:  # CRC mismatch, bad compression, cut records
                self.problems.append(f'a corrupt chunk before byte {self.position} '
                                     f'({type(error).__name__}: {error}); skipped')
                return
        else:
            inner = [record]
        for item in inner:
            if isinstance(item, Message):
                info = state['channels'].get(item.channel_id)
                if info is None:
                    self._note(f'a message on unknown channel {item.channel_id}')
                elif (state['wanted'] is None or info.topic in state['wanted']) and \
                        (state['start'] is None or item.log_time >= state['start']):
                    info.count += 1
                    yield BagMessage(info, item.data, item.log_time, item.publish_time,
                                     item.sequence)
            elif isinstance(item, Schema):
                state['schemas'][item.id] = item
            elif isinstance(item, Channel):
                if item.id not in state['channels']:
                    info = _topic_info(item, state['schemas'].get(item.schema_id))
                    state['channels'][item.id] = self.topics.setdefault(info.topic, info)
            elif isinstance(item, Header):
                self.profile, self.library = item.profile, item.library
            elif isinstance(item, Metadata):
                parsed = self._parse_metadata(item)
                if parsed is not None:
                    self.metadata = parsed
            elif isinstance(item, Footer):
                self.complete = True

    def _parse_metadata(self, record):
        """Return a metadata record's rosbag2 ``metadata.yaml`` as a dict, None if it has none."""
        import yaml
        if record.name != 'rosbag2' or 'serialized_metadata' not in record.metadata:
            return None
        try:
            return yaml.safe_load(record.metadata['serialized_metadata']) or {}
        except yaml.YAMLError as error:
            self.problems.append(f'rosbag2 metadata is not YAML: {error}')
            return None

    def _note(self, text):
        if text not in self.problems:
            self.problems.append(text)


@dataclass
class BagSummary:
    """What a complete bag's summary section says."""

    topics: dict                        # topic -> TopicInfo with counts
    profile: str
    library: str
    start_ns: int
    end_ns: int
    message_count: int
    metadata: dict = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Return the time from the first to the last message [s]."""
        return max(self.end_ns - self.start_ns, 0) * 1e-9


def _topic_info(channel, schema) -> TopicInfo:
    qos = parse_qos(channel.metadata.get('offered_qos_profiles', ''))
    return TopicInfo(topic=channel.topic, type_name=schema.name if schema else '',
                     encoding=channel.message_encoding, qos=qos,
                     type_hash=channel.metadata.get('topic_type_hash', ''),
                     schema_encoding=schema.encoding if schema else '', channel_id=channel.id)


def _describe(error, at, size) -> str:
    name = type(error).__name__
    if at >= size or name in ('EndOfFile', 'EOFError'):
        return f'the bag ends early (truncated at byte {at} of {size}: {name})'
    return f'unreadable data at byte {at} of {size} ({name}: {error})'
