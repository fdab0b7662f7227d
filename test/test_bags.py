"""
Bags without ROS processes: the MCAP files leo_ros writes are what rosbag2 writes.

Each file is checked with the format's own reader (``mcap``), decoded from the bag's own
message definitions by two independent decoders (``mcap_ros2`` and ``rosbags``), and compared
with what rclpy serialised. Truncated and corrupt files are read as far as they can be.
"""

from pathlib import Path

from leo_ros.bags.definitions import DELIMITER, field_types, message_definition, type_hash
from leo_ros.bags.mcap_bag import BagError, BagReader, BagWriter, parse_qos, QosProfile
from leo_ros.bags.record import DEFAULT_TOPICS, RecordConfig, subscription_qos
from leo_ros.bags.replay import parse_remap, ReplayConfig, Schedule
import numpy as np
import pytest


def cloud_message(seed, width=64, height=48):
    """Return an organised PointCloud2 with xyz + rgb (what a camera publishes)."""
    from leo_ros.ros.conversions import xyz_rgb_to_pointcloud2
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(height, width, 3)).astype(np.float32)
    rgb = rng.random((height, width, 3)).astype(np.float32)
    return xyz_rgb_to_pointcloud2(xyz, rgb, frame_id='camera_optical_frame')


def write_session(path, clouds=10, strings=5):
    """Write a small bag: clouds at 10 Hz (best effort) and strings (reliable)."""
    from rclpy.serialization import serialize_message
    from std_msgs.msg import String
    written = {'/camera/points': [], '/leo/response': []}
    with BagWriter(path, chunk_size=64 * 1024) as writer:
        writer.add_topic('/camera/points', 'sensor_msgs/msg/PointCloud2',
                         [QosProfile(reliability='best_effort', depth=5)])
        writer.add_topic('/leo/response', 'std_msgs/msg/String', [QosProfile()])
        for k in range(clouds):
            data = serialize_message(cloud_message(k))
            writer.write('/camera/points', data, 1_000_000_000 + k * 100_000_000)
            written['/camera/points'].append(data)
        for k in range(strings):
            data = serialize_message(String(data=f'answer {k}'))
            writer.write('/leo/response', data, 1_050_000_000 + k * 200_000_000)
            written['/leo/response'].append(data)
    return written


def test_definitions_are_complete_ros2msg_texts():
    definition = message_definition('sensor_msgs/PointCloud2')
    assert definition.name == 'sensor_msgs/msg/PointCloud2' and definition.encoding == 'ros2msg'
    sections = definition.text.split(f'\n{DELIMITER}\nMSG: ')
    assert 'PointField[] fields' in sections[0]          # the type's own text comes first
    assert sorted(s.split('\n', 1)[0] for s in sections[1:]) == [
        'builtin_interfaces/msg/Time', 'sensor_msgs/msg/PointField', 'std_msgs/msg/Header']
    assert definition.type_hash.startswith('RIHS01_')
    assert type_hash('leo_ros/msg/SceneObjects').startswith('RIHS01_')
    # leo_ros's own messages are found too, with their nested types
    assert 'MSG: leo_ros/msg/SceneObject' in message_definition('leo_ros/msg/SceneObjects').text


def test_field_types_skip_constants_primitives_and_bounds():
    text = ('uint8 KIND_STOP=3  # a constant\nstring<=10 name\nfloat64[] values\n'
            'Point[4] corners\ngeometry_msgs/Pose pose  # comment\nstd_msgs/msg/Header[<=2] h\n')
    assert field_types(text, 'geometry_msgs') == [
        'geometry_msgs/msg/Point', 'geometry_msgs/msg/Pose', 'std_msgs/msg/Header']


def test_written_bag_is_what_rosbag2_writes(tmp_path):
    import yaml
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    path = tmp_path / 'session.mcap'
    written = write_session(path)
    with open(path, 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == 'ros2'
        summary = reader.get_summary()
        schemas = {s.name: s for s in summary.schemas.values()}
        assert set(schemas) == {'sensor_msgs/msg/PointCloud2', 'std_msgs/msg/String'}
        assert {s.encoding for s in schemas.values()} == {'ros2msg'}
        channels = {c.topic: c for c in summary.channels.values()}
        assert {c.message_encoding for c in channels.values()} == {'cdr'}
        points = channels['/camera/points']
        assert parse_qos(points.metadata['offered_qos_profiles'])[0].reliability == 'best_effort'
        assert points.metadata['topic_type_hash'] == type_hash('sensor_msgs/msg/PointCloud2')
        counts = summary.statistics.channel_message_counts
        assert {c.topic: counts[c.id] for c in channels.values()} == {
            '/camera/points': 10, '/leo/response': 5}
        decoded = {}
        for _, channel, message, ros_msg in reader.iter_decoded_messages(log_time_order=False):
            decoded.setdefault(channel.topic, []).append((message.data, ros_msg))
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
    assert [d for d, _ in decoded['/camera/points']] == written['/camera/points']
    assert [m.data for _, m in decoded['/leo/response']] == [f'answer {k}' for k in range(5)]
    first = decoded['/camera/points'][0][1]
    assert (first.width, first.height) == (64, 48) and [f.name for f in first.fields][:3] == \
        ['x', 'y', 'z']
    info = yaml.safe_load(metadata['rosbag2']['serialized_metadata'])
    bag = info['rosbag2_bagfile_information']
    assert bag['version'] == 9 and bag['storage_identifier'] == 'mcap'
    assert bag['message_count'] == 15 and bag['relative_file_paths'] == ['session.mcap']
    assert bag['duration']['nanoseconds'] == 900_000_000
    topics = {t['topic_metadata']['name']: t for t in bag['topics_with_message_count']}
    assert topics['/leo/response']['message_count'] == 5
    assert topics['/camera/points']['topic_metadata']['offered_qos_profiles'][0][
        'reliability'] == 'best_effort'


def test_a_second_reader_decodes_it_like_rclpy(tmp_path):
    from rclpy.serialization import deserialize_message
    from rosbags.highlevel import AnyReader
    from sensor_msgs.msg import PointCloud2
    path = tmp_path / 'session.mcap'
    written = write_session(path, clouds=3, strings=1)
    with AnyReader([Path(path)]) as reader:
        clouds = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages()
                  if c.topic == '/camera/points']
    assert len(clouds) == 3
    for raw, theirs in zip(written['/camera/points'], clouds):
        ours = deserialize_message(raw, PointCloud2)
        assert bytes(ours.data) == theirs.data.tobytes()
        assert ours.row_step == theirs.row_step and ours.header.frame_id == \
            theirs.header.frame_id


def test_reader_summary_and_messages(tmp_path):
    path = tmp_path / 'session.mcap'
    written = write_session(path)
    reader = BagReader(path)
    summary = reader.summary()
    assert summary.message_count == 15 and summary.profile == 'ros2'
    assert summary.duration == pytest.approx(0.9)
    assert summary.topics['/camera/points'].type_name == 'sensor_msgs/msg/PointCloud2'
    messages = list(reader.messages(topics=['/camera/points'], start_ns=1_500_000_000))
    assert [m.data for m in messages] == written['/camera/points'][5:]
    assert reader.complete and not reader.problems


def test_truncated_bag_reads_what_it_holds(tmp_path):
    path = tmp_path / 'session.mcap'
    write_session(path, clouds=40)
    data = path.read_bytes()
    cut = tmp_path / 'cut.mcap'
    cut.write_bytes(data[:len(data) // 2])
    reader = BagReader(cut)
    assert reader.summary() is None
    messages = list(reader.messages())
    assert 5 <= len(messages) < 45
    assert not reader.complete and any('ends early' in p for p in reader.problems)


def test_corrupt_chunk_is_skipped_and_the_rest_is_read(tmp_path):
    path = tmp_path / 'session.mcap'
    write_session(path, clouds=40)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)              # inside a chunk of clouds
    bad = tmp_path / 'bad.mcap'
    bad.write_bytes(bytes(data))
    reader = BagReader(bad)
    messages = list(reader.messages())
    assert 30 <= len(messages) < 45
    assert any('skipped' in p for p in reader.problems), reader.problems


@pytest.mark.parametrize('content', [b'', b'not a bag at all', b'\x89MCAP0\r\n'])
def test_files_that_are_not_bags(tmp_path, content):
    path = tmp_path / 'x.mcap'
    path.write_bytes(content)
    if not content.startswith(b'\x89MCAP'):
        with pytest.raises(BagError, match='not an MCAP file'):
            BagReader(path)
        return
    reader = BagReader(path)                          # only the magic: nothing to read
    assert list(reader.messages()) == [] and reader.problems
    with pytest.raises(BagError, match='no bag'):
        BagReader(tmp_path / 'missing.mcap')


def test_a_type_without_definition_is_written_and_read_back_without_schema(tmp_path):
    from leo_ros.ros.conversions import message_class
    path = tmp_path / 'unknown.mcap'
    with BagWriter(path) as writer:
        writer.add_topic('/odd', 'nobody_msgs/msg/Odd')
        writer.write('/odd', b'\x00\x01\x00\x00abcd', 5)
    reader = BagReader(path)
    (message,) = list(reader.messages())
    assert message.topic.type_name == 'nobody_msgs/msg/Odd'
    assert message.topic.schema_encoding == ''
    assert message_class('nobody_msgs/msg/Odd') is None
    assert message_class('std_msgs/msg/String').__name__ == 'String'


def test_writer_refuses_existing_files_and_unknown_topics(tmp_path):
    path = tmp_path / 'a.mcap'
    path.write_bytes(b'x')
    with pytest.raises(BagError, match='exists'):
        BagWriter(path)
    with BagWriter(tmp_path / 'b.mcap') as writer:
        with pytest.raises(BagError, match='not added'):
            writer.write('/nothing', b'', 0)
    with pytest.raises(BagError, match='compression'):
        BagWriter(tmp_path / 'c.mcap', compression='gzip')


def test_qos_round_trip_and_version_8_numbers():
    profile = QosProfile(reliability='best_effort', durability='transient_local', depth=3,
                         deadline_ns=1_500_000_000)
    assert QosProfile.from_rosbag2(profile.to_rosbag2()) == profile
    old = QosProfile.from_rosbag2({'history': 1, 'depth': 5, 'reliability': 2,
                                   'durability': 1, 'liveliness': 1})
    assert (old.reliability, old.durability, old.history) == \
        ('best_effort', 'transient_local', 'keep_last')
    assert parse_qos('') == [] and parse_qos('{not: [valid') == []


def test_recording_subscribes_like_rosbag2():
    best = QosProfile(reliability='best_effort')
    latched = QosProfile(durability='transient_local')
    assert subscription_qos([QosProfile(), best]).reliability == 'best_effort'
    assert subscription_qos([QosProfile()]).reliability == 'reliable'
    assert subscription_qos([latched]).durability == 'transient_local'
    assert subscription_qos([latched, QosProfile()]).durability == 'volatile'
    assert subscription_qos([]).reliability == 'best_effort'


def test_record_config_checks_and_resolves(tmp_path):
    config = RecordConfig(path=str(tmp_path / 'a.mcap'))
    resolved = config.resolved_topics('/robot1')
    assert '/robot1/camera/points' in resolved and '/diagnostics' in resolved
    assert '/tf' in resolved and '/robot1/leo/response' in resolved
    assert len(resolved) == len(DEFAULT_TOPICS)
    assert config.wanted('/robot1/leo/action_tokens', '/robot1')
    assert not config.wanted('/leo/segmented_points', '/')
    for bad, match in (({'path': 'a.bag'}, 'mcap'), ({'compression': 'rar'}, 'compression'),
                       ({'topics': ()}, 'nothing'), ({'max_pending_mb': 0}, 'max_pending')):
        values = {'path': str(tmp_path / 'b.mcap'), **bad}
        with pytest.raises(ValueError, match=match):
            RecordConfig(**values)


def test_replay_config_and_schedule():
    config = ReplayConfig(topics=('camera/points',), remaps=('/camera/points:=/kinect/points',))
    assert config.wanted('/camera/points') and not config.wanted('/odom')
    assert not ReplayConfig().wanted('/clock')
    assert config.output_topic('/camera/points') == '/kinect/points'
    assert config.output_topic('/odom') == '/odom'
    for bad in ('nothing', ':=/a', '/a:='):
        with pytest.raises(ValueError, match='FROM:=TO'):
            parse_remap(bad)
    with pytest.raises(ValueError, match='rate'):
        ReplayConfig(rate=0)
    with pytest.raises(ValueError, match='start'):
        ReplayConfig(start=-1)
    schedule = Schedule(first_ns=10_000_000_000, rate=2.0, wall_start=100.0,
                        clock_offset_ns=5)
    assert schedule.due(12_000_000_000) == pytest.approx(101.0)
    assert schedule.bag_time(101.0) == 12_000_000_005
    assert schedule.bag_time(99.0) == 10_000_000_005      # never before the start
