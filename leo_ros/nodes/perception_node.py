"""
perception_node: live scene tokenizer.

Subscribes ``camera/points`` (PointCloud2), or ``camera/depth`` + ``camera/camera_info``
(+ ``camera/image`` for colour) with ``input:=depth``, all with sensor-data QoS. Callbacks only
keep the newest frame; a worker thread segments it (leo_ros.perception) and publishes
``/leo/scene_objects`` (leo_ros/SceneObjects), ``/leo/scene_markers`` (MarkerArray: box, label
and id per object, colour fixed per id), ``/leo/segmented_points`` (PointCloud2 coloured by
object) and ``/diagnostics``.

The cloud's pose in the fixed frame comes from TF (leo_ros.ros.tf: tf2_ros where installed, a
small fallback elsewhere), else from a ``camera/pose`` topic (PoseStamped: the cloud's frame in
the fixed frame); without either, objects stay in the cloud's frame and diagnostics say so.
Parameters: docs/perception.md.
"""

from dataclasses import replace
import sys
import threading
import time

from leo_ros.perception.memory import SceneMemoryConfig
from leo_ros.perception.pipeline import (label_cloud_colors, PerceptionConfig,
                                         PerceptionPipeline, stable_colors)
from leo_ros.perception.segmentation import SegmentationConfig
from leo_ros.ros.parameters import Spec
import numpy as np

#: ROS parameter -> Spec (default, description, limits, read-only). Segmentation and memory
#: parameters map onto SegmentationConfig / SceneMemoryConfig fields of the same name (memory
#: ones after 'memory_'). Segmentation thresholds, pose_max_age, max_points and
#: publish_debug_cloud change live; the rest shapes the node and is read-only.
PARAMETERS = {
    'input': Spec('points', "'points': subscribe camera/points (PointCloud2); 'depth': "
                  'camera/depth + camera/camera_info (+ camera/image for colour)',
                  choices=('points', 'depth'), read_only=True),
    'fixed_frame': Spec('map', 'frame the scene memory is kept in (REP-105)', read_only=True),
    'use_memory': Spec(True, 'merge objects over frames with stable ids (false: current frame '
                       'only)', read_only=True),
    'use_color': Spec(True, 'depth input: colour points from camera/image when its size '
                      'matches', read_only=True),
    'pose_max_age': Spec(1.0, 'camera/pose older than this relative to the cloud is ignored '
                         '[s]; 0 accepts any age', 0.0, 3600.0),
    'points_per_object': Spec(1024, 'points sampled per object for the object encoder (LEO: '
                              '1024)', 16, 16384, read_only=True),
    'max_points': Spec(4000000, 'clouds with more points are refused and counted as bad input',
                       1, 100000000),
    'publish_debug_cloud': Spec(True, 'publish /leo/segmented_points, the cloud coloured by '
                                'object'),
    'diagnostics_period': Spec(1.0, 'seconds between /diagnostics messages', 0.05, 60.0,
                               read_only=True),
    'instance_field': Spec('', 'PointCloud2 field with per-point instance ids (> 0 object, 0 '
                           'support, < 0 none) to use instead of geometric segmentation, e.g. '
                           "'instance' from sim_node or an upstream instance segmenter; '' = "
                           'segment by geometry', read_only=True),
    'classifier_path': Spec('', 'object category classifier (classifier.json + '
                            "classifier.safetensors): a directory, '' for the default model's, "
                            "'none' for no labels", read_only=True),
    'plane_distance': Spec(SegmentationConfig.plane_distance,
                           'support plane inlier distance at 1 m, grows with range^2 [m]',
                           1e-4, 1.0),
    'plane_min_extent': Spec(SegmentationConfig.plane_min_extent,
                             'a support plane spans at least this in both directions [m]',
                             0.01, 100.0),
    'plane_min_fraction': Spec(SegmentationConfig.plane_min_fraction,
                               'a support plane holds at least this fraction of the valid '
                               'points', 0.0, 1.0),
    'max_planes': Spec(SegmentationConfig.max_planes, 'support planes searched per frame', 0,
                       20),
    'neighbor_distance': Spec(SegmentationConfig.neighbor_distance,
                              'largest step between neighbouring pixels of one surface at 1 m, '
                              'grows with range [m]', 1e-4, 1.0),
    'concave_angle_deg': Spec(SegmentationConfig.concave_angle_deg,
                              'cut surfaces where their normals turn inwards by more than this '
                              '[deg]', 0.0, 180.0),
    'normal_step': Spec(SegmentationConfig.normal_step, 'half-width of the normal stencil '
                        '[pixels]', 1, 50),
    'stride': Spec(SegmentationConfig.stride, 'organized clouds: segment every stride-th pixel, '
                   'then label all points', 1, 64),
    'min_object_points': Spec(SegmentationConfig.min_object_points,
                              'smaller clusters are not objects [points]', 1, 10000000),
    'max_objects': Spec(SegmentationConfig.max_objects, 'objects per frame, largest first (LEO: '
                        '60)', 1, 1000),
    'voxel_size': Spec(SegmentationConfig.voxel_size, 'unorganized clouds: voxel grid [m]',
                       1e-4, 1.0),
    'cluster_distance': Spec(SegmentationConfig.cluster_distance,
                             'unorganized clouds: voxels closer than this are one object [m]',
                             1e-4, 10.0),
    'max_range': Spec(SegmentationConfig.max_range, 'points farther than this are ignored [m]',
                      0.1, 1000.0),
    'memory_voxel_size': Spec(SceneMemoryConfig.voxel_size, 'scene memory overlap grid [m]',
                              1e-3, 1.0, read_only=True),
    'memory_merge_overlap': Spec(SceneMemoryConfig.merge_overlap,
                                 'join a tracked object when this fraction of the voxels of '
                                 'the smaller one is shared', 0.01, 1.0, read_only=True),
    'memory_max_points_per_object': Spec(SceneMemoryConfig.max_points_per_object,
                                         'points kept per remembered object', 16, 10000000,
                                         read_only=True),
    'memory_max_objects': Spec(SceneMemoryConfig.max_objects,
                               'remembered objects; the least recently seen go first', 1,
                               10000, read_only=True),
    'memory_forget_after': Spec(SceneMemoryConfig.forget_after,
                                'forget objects unseen for this long [s]; 0 never', 0.0,
                                1000000.0, read_only=True),
}
SEGMENTATION_FIELDS = ('plane_distance', 'plane_min_extent', 'plane_min_fraction', 'max_planes',
                       'neighbor_distance', 'concave_angle_deg', 'normal_step', 'stride',
                       'min_object_points', 'max_objects', 'voxel_size', 'cluster_distance',
                       'max_range')


def declare_config(node):
    """Declare every parameter (descriptions, limits); return (settings dict, PerceptionConfig)."""
    from leo_ros.ros.parameters import declare
    values = declare(node, PARAMETERS)          # input's choices are checked there
    segmentation = replace(SegmentationConfig(),
                           **{name: values[name] for name in SEGMENTATION_FIELDS})
    memory = SceneMemoryConfig(
        voxel_size=values['memory_voxel_size'], merge_overlap=values['memory_merge_overlap'],
        max_points_per_object=values['memory_max_points_per_object'],
        max_objects=values['memory_max_objects'], forget_after=values['memory_forget_after'])
    config = PerceptionConfig(segmentation=segmentation, memory=memory,
                              use_memory=values['use_memory'],
                              points_per_object=values['points_per_object'],
                              max_points=values['max_points'])
    return values, config


class PerceptionNode:
    """
    The ROS adapter around :class:`~leo_ros.perception.pipeline.PerceptionPipeline`.

    :param node: an rclpy LifecycleNode; frames are processed once its lifecycle manager has
        configured and activated it (leo_ros.ros.node_runner)
    :param classify: optional ``classify(tokens) -> (labels, confidences)`` (see the pipeline)
    """

    def __init__(self, node, classify=None):
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped
        from leo_ros.msg import SceneObjects
        from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2
        from visualization_msgs.msg import MarkerArray

        self.node = node
        self.settings, config = declare_config(node)
        self.classifier_status = 'given' if classify is not None else 'not loaded yet'
        self.pipeline = PerceptionPipeline(config, classify=classify)
        self.lifecycle = 'unconfigured'   # frames are processed and published when 'active'
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.pending = None             # newest unprocessed frame (only one is ever kept)
        self.camera_info = None
        self.image = None
        self.pose = None
        self.output_frame = None
        self.stats = {'received': 0, 'processed': 0, 'dropped': 0, 'bad': 0, 'objects': 0,
                      'frames without objects': 0,
                      'frame_objects': 0, 'ms_last': 0.0, 'ms_mean': 0.0, 'frame_status': 'no '
                      'frame yet', 'transform': 'no frame yet', 'last_error': ''}
        self._logged = set()

        sensor = qos_profile_sensor_data
        group = MutuallyExclusiveCallbackGroup()
        if self.settings['input'] == 'points':
            node.create_subscription(PointCloud2, 'camera/points', self.on_cloud, sensor,
                                     callback_group=group)
        else:
            node.create_subscription(Image, 'camera/depth', self.on_depth, sensor,
                                     callback_group=group)
            node.create_subscription(CameraInfo, 'camera/camera_info', self.on_camera_info,
                                     sensor, callback_group=group)
            if self.settings['use_color']:
                node.create_subscription(Image, 'camera/image', self.on_image, sensor,
                                         callback_group=group)
        self.transforms = self._make_transforms()
        # Without a transform through TF, a camera/pose topic (the cloud frame's pose in the
        # fixed frame) is used when one is published.
        node.create_subscription(PoseStamped, 'camera/pose', self.on_pose, 10,
                                 callback_group=group)
        # Relative names: /leo/... without a namespace, /<ns>/leo/... with one.
        self.objects_pub = node.create_publisher(SceneObjects, 'leo/scene_objects', 10)
        self.markers_pub = node.create_publisher(MarkerArray, 'leo/scene_markers', 10)
        self.cloud_pub = node.create_publisher(PointCloud2, 'leo/segmented_points', sensor)
        from std_srvs.srv import Trigger
        self.reset_requested = False
        node.create_service(Trigger, 'leo/reset_scene', self.on_reset_scene,
                            callback_group=group)
        self._subscribe_world_reset(group)
        self.diagnostics_pub = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        node.create_timer(float(self.settings['diagnostics_period']), self.publish_diagnostics,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.worker = threading.Thread(target=self.run_worker, name='perception', daemon=True)
        self.worker.start()
        from leo_ros.ros.parameters import warn_undeclared
        node.add_on_set_parameters_callback(self._on_set_parameters)
        warn_undeclared(node, PARAMETERS)

    # --- lifecycle (rclpy.lifecycle; leo_ros.ros.node_runner wires these) ------------------

    def configure(self):
        """Load the object classifier (the perception model); frames wait for activate."""
        if self.pipeline.classify is None and self.settings['classifier_path'] != 'none':
            self.pipeline.classify = self._load_classifier(self.settings['classifier_path'])
        elif self.settings['classifier_path'] == 'none':
            self.classifier_status = 'none'
        self.lifecycle = 'inactive'
        return True

    def activate(self):
        """Start processing and publishing frames."""
        self.lifecycle = 'active'
        return True

    def deactivate(self):
        """Stop processing and publishing (frames that arrive are dropped)."""
        self.lifecycle = 'inactive'
        return True

    def cleanup(self):
        """Forget the scene and the classifier."""
        self.pipeline.classify = None
        self.classifier_status = 'released (lifecycle cleanup)'
        with self.lock:
            self.reset_requested = True
        self.wake.set()
        self.lifecycle = 'unconfigured'
        return True

    def shutdown(self):
        self.lifecycle = 'finalized'
        return True

    def _on_set_parameters(self, parameters):
        """Apply live changes (segmentation thresholds, limits) in one assignment, or reject."""
        from leo_ros.ros.parameters import live_update

        def build(changes):
            config = self.pipeline.config
            segmentation = replace(config.segmentation, **{
                k: v for k, v in changes.items() if k in SEGMENTATION_FIELDS})
            config = replace(config, segmentation=segmentation,
                             max_points=changes.get('max_points', config.max_points))
            return config, changes

        result, built = live_update(PARAMETERS, parameters, build)
        if built is not None:
            self.pipeline.config, changes = built    # process() reads the config once per frame
            self.settings.update(changes)
        return result

    def _load_classifier(self, path):
        """Return the classifier's ``classify`` (labels per tracked object), or None."""
        from pathlib import Path
        try:
            from leo_ros.model.object_encoder import ObjectEncoder
            from leo_ros.model.loading import default_model_path
            directory = Path(path) if path else default_model_path()
            model = ObjectEncoder.load(directory)
        except Exception as error:   # no labels is better than no perception
            self.classifier_status = f'not loaded: {type(error).__name__}: {error}'
            self.node.get_logger().warning(
                f'object labels off, classifier {self.classifier_status}')
            return None
        self.classifier_status = f'loaded from {directory}'
        self.node.get_logger().info(f'object classifier {self.classifier_status}')
        return model.classify

    # --- callbacks: store the newest input only -------------------------------------------

    def _enqueue(self, frame):
        from leo_ros.ros.conversions import stamp_to_seconds
        reset = self.reset_stamp
        if reset is not None and stamp_to_seconds(frame[1].header.stamp) < reset:
            self.refused.add('before_world_reset', 'frame stamped before the world reset')
            return
        with self.lock:
            self.stats['received'] += 1
            if self.pending is not None:
                self.stats['dropped'] += 1      # newest frame wins
            self.pending = frame
        self.wake.set()

    def on_cloud(self, msg):
        self._enqueue(('points', msg, None, None))

    def on_depth(self, msg):
        with self.lock:
            info, image = self.camera_info, self.image
        self._enqueue(('depth', msg, info, image))

    def on_camera_info(self, msg):
        with self.lock:
            self.camera_info = msg

    def on_image(self, msg):
        with self.lock:
            self.image = msg

    def on_pose(self, msg):
        with self.lock:
            self.pose = msg

    def _subscribe_world_reset(self, group):
        """Clear the memory on leo/world_reset (sim_node's /sim/reset); count refusals."""
        from leo_ros.ros.qos import latched_qos
        from leo_ros.ros.validation import RefusalCounter
        from std_msgs.msg import Header
        self.refused = RefusalCounter()       # refused frames by reason (diagnostics)
        self.reset_stamp = None               # frames stamped before it are of an old world
        self.node.create_subscription(Header, 'leo/world_reset', self.on_world_reset,
                                      latched_qos(), callback_group=group)

    def on_world_reset(self, msg):
        """Forget the scene of a world that was reset; drop frames stamped before it."""
        from leo_ros.ros.conversions import stamp_to_seconds
        self.reset_stamp = stamp_to_seconds(msg.stamp)
        with self.lock:
            self.reset_requested = True
            self.pending = None
        self.wake.set()

    def on_reset_scene(self, request, response):
        """Forget the remembered scene (the world changed); the worker clears it."""
        with self.lock:
            self.reset_requested = True
            if self.pending is not None:
                self.stats['dropped'] += 1
            self.pending = None              # a frame of the old scene
        self.wake.set()
        response.success, response.message = True, 'scene memory will be cleared'
        return response

    # --- worker ---------------------------------------------------------------------------

    def run_worker(self):
        while not self.stopping.is_set():
            if not self.wake.wait(0.2):
                continue
            with self.lock:
                frame, self.pending = self.pending, None
                reset, self.reset_requested = self.reset_requested, False
                self.wake.clear()
            if reset:
                self.pipeline.reset()
            if frame is None:
                continue
            if self.lifecycle != 'active':
                with self.lock:
                    self.stats['dropped'] += 1
                    self.stats['frame_status'] = f'{self.lifecycle} (lifecycle): not processing'
                continue
            try:
                self.process(frame)
            except Exception as error:  # the worker must outlive any one frame
                self._bad_input('internal', error)

    def close(self):
        self.stopping.set()
        self.wake.set()
        self.worker.join(timeout=2.0)

    def process(self, frame):
        """Convert, segment and publish one frame; bad input is counted and logged once."""
        from leo_ros.ros.conversions import ConversionError, stamp_to_seconds
        kind, msg, info, image = frame
        start = time.perf_counter()
        try:
            xyz, rgb = self._to_points(kind, msg, info, image)
            instances = self._instances(kind, msg, xyz)
            camera_to_fixed, output_frame = self._camera_pose(msg)
            if output_frame != self.output_frame:
                self.pipeline.reset()   # memory in another frame is meaningless here
                self.output_frame = output_frame
            result = self.pipeline.process(xyz, rgb, camera_to_fixed, output_frame,
                                           stamp_to_seconds(msg.header.stamp), instances)
        except (ConversionError, ValueError) as error:
            self._bad_input(kind, error)
            return
        if len(result.frame_ids) == 0:
            self._log_once('no objects', 'a frame without objects (one plane, or nothing on '
                           'it): publishing the remembered scene', level='info')
        self._publish(msg, xyz, result)
        elapsed = (time.perf_counter() - start) * 1e3
        with self.lock:
            stats = self.stats
            stats['processed'] += 1
            stats['ms_last'] = elapsed
            stats['ms_mean'] += (elapsed - stats['ms_mean']) / min(stats['processed'], 20)
            stats['frame_objects'] = len(result.frame_ids)
            stats['frames without objects'] += int(len(result.frame_ids) == 0)
            stats['objects'] = len(result.tokens)
            stats['frame_status'] = 'ok'

    def _instances(self, kind, msg, xyz):
        """Return the cloud's instance ids (shaped like ``xyz[..., 0]``) if configured."""
        name = self.settings['instance_field']
        if not name or kind != 'points':
            return None
        from leo_ros.ros.conversions import pointcloud2_to_array
        cloud = pointcloud2_to_array(msg)
        if name not in cloud.dtype.names:
            self._log_once(('instances', name), f'instance_field {name!r} is not in the cloud '
                           f'{cloud.dtype.names}: segmenting by geometry')
            return None
        return np.asarray(cloud[name]).reshape(xyz.shape[:-1]).astype(np.int64)

    def _to_points(self, kind, msg, info, image):
        from leo_ros.ros.conversions import (ConversionError, depth_image_to_points,
                                             depth_to_meters, EmptyCloudError,
                                             image_to_array, pointcloud2_to_xyz_rgb)
        from leo_ros.ros.validation import check_intrinsics
        count = int(msg.width) * int(msg.height)
        if count > self.pipeline.config.max_points:
            raise ValueError(f'{count} points, more than max_points '
                             f'{self.pipeline.config.max_points}')
        if kind == 'points':
            try:
                xyz, rgb = pointcloud2_to_xyz_rgb(msg, organized=msg.height > 1)
            except EmptyCloudError as error:
                raise ValueError(f'empty cloud ({error})') from error
            if not np.isfinite(xyz[..., 2]).any():      # conversions set invalid points to NaN
                raise ValueError('no valid point in the cloud (all NaN/inf)')
            return xyz, rgb
        if info is None:
            depth_to_meters(msg)   # a frame with a bad encoding is bad whatever else is missing
            raise ConversionError('camera_info', 'no camera/camera_info received yet')
        check_intrinsics(info)          # finite K, positive focal lengths, else refused
        xyz = depth_image_to_points(msg, info)                             # (H, W, 3)
        if not np.isfinite(xyz[..., 2]).any():
            raise ValueError('no valid depth in the image')
        rgb = None
        if image is not None:
            try:
                pixels = image_to_array(image)
            except ConversionError as error:
                self._log_once('image', f'camera/image ignored: {error}')
                pixels = None
            if pixels is not None and pixels.shape[:2] == xyz.shape[:2] and pixels.ndim == 3:
                rgb = pixels[..., :3].astype(np.float32) / 255.0
        return xyz, rgb

    def _camera_pose(self, msg):
        """Return (camera-to-fixed (4, 4) or None, output frame); note it for diagnostics."""
        from leo_ros.ros.conversions import pose_to_matrix, stamp_to_seconds
        fixed = self.settings['fixed_frame']
        cloud_frame = msg.header.frame_id
        if self.transforms is not None:
            matrix = self._tf_lookup(fixed, cloud_frame, msg.header.stamp)
            if matrix is not None:
                self.stats['transform'] = f'tf {cloud_frame} -> {fixed}'
                return matrix, fixed
        with self.lock:
            pose = self.pose
        max_age = float(self.settings['pose_max_age'])
        if pose is not None:
            pose_time = stamp_to_seconds(pose.header.stamp)
            age = abs(stamp_to_seconds(msg.header.stamp) - pose_time)
            # A zero stamp means 'now' (static or unstamped poses).
            if max_age <= 0 or pose_time == 0.0 or age <= max_age:
                self.stats['transform'] = f'camera/pose {cloud_frame} -> ' \
                    f'{pose.header.frame_id or fixed}'
                return pose_to_matrix(pose.pose), pose.header.frame_id or fixed
        self.stats['transform'] = f'no transform to {fixed}: using the cloud frame ' \
            f'{cloud_frame!r}'
        return None, cloud_frame

    def _make_transforms(self):
        from leo_ros.ros.tf import Transforms
        try:
            return Transforms(self.node)
        except ImportError as error:   # neither tf2_ros nor tf2_msgs: camera/pose only
            self._log_once('tf', f'no TF: {error}')
            return None

    def _tf_lookup(self, target, source, stamp):
        from leo_ros.ros.tf import TransformUnavailable
        # At the cloud's stamp; else the newest transform (a static or slow tf tree).
        for when in (stamp, None):
            try:
                return self.transforms.lookup(target, source, stamp=when)
            except TransformUnavailable:
                continue
        return None

    def _bad_input(self, kind, error):
        reason = getattr(error, 'reason', '') or (f'{kind}_{error.field}' if hasattr(
            error, 'field') else kind)
        self.refused.add(reason, str(error))
        with self.lock:
            self.stats['bad'] += 1
            self.stats['frame_status'] = f'bad input: {error}'
            self.stats['last_error'] = str(error)
        key = (kind, str(error).split(':')[0][:40])
        self._log_once(key, f'bad {kind} frame skipped: {error}')

    def _log_once(self, key, text, level='warning'):
        if key not in self._logged:
            self._logged.add(key)
            logger = self.node.get_logger()
            if level == 'info':
                logger.info(text + ' (logged once)')
            else:
                logger.warning(text + ' (logged once)')

    # --- output ---------------------------------------------------------------------------

    def _publish(self, msg, xyz, result):
        from leo_ros.ros.conversions import scene_tokens_to_msg, xyz_rgb_to_pointcloud2
        tokens = result.tokens
        self.objects_pub.publish(scene_tokens_to_msg(tokens, stamp=msg.header.stamp))
        self.markers_pub.publish(self._markers(tokens, msg.header.stamp))
        if self.settings['publish_debug_cloud'] and self.cloud_pub.get_subscription_count():
            colors = label_cloud_colors(result.segmentation.labels, result.frame_ids)
            self.cloud_pub.publish(xyz_rgb_to_pointcloud2(
                xyz, colors, frame_id=msg.header.frame_id, stamp=msg.header.stamp))

    def _markers(self, tokens, stamp):
        from visualization_msgs.msg import Marker, MarkerArray
        markers = MarkerArray()
        clear = Marker()
        clear.action = Marker.DELETEALL
        markers.markers.append(clear)
        colors = stable_colors(tokens.ids)
        for k in range(len(tokens)):
            object_id = int(tokens.ids[k])
            centre, size = tokens.centers[k], np.maximum(tokens.sizes[k], 0.005)
            for namespace, kind in (('boxes', Marker.CUBE), ('labels', Marker.TEXT_VIEW_FACING)):
                marker = Marker()
                marker.header.frame_id = tokens.frame_id
                marker.header.stamp = stamp
                marker.ns, marker.id, marker.type, marker.action = namespace, object_id, kind, \
                    Marker.ADD
                marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = (
                    float(centre[0]), float(centre[1]), float(centre[2]))
                marker.pose.orientation.w = 1.0
                marker.color.r, marker.color.g, marker.color.b = (float(c) for c in colors[k])
                if kind == Marker.CUBE:
                    marker.scale.x, marker.scale.y, marker.scale.z = (float(s) for s in size)
                    marker.color.a = 0.4
                else:
                    marker.pose.position.z += float(size[2]) / 2 + 0.03
                    marker.scale.z = 0.04
                    marker.color.a = 1.0
                    marker.text = f'{object_id}: {tokens.labels[k]}'
                markers.markers.append(marker)
        return markers

    def publish_diagnostics(self):
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
        from leo_ros.ros.conversions import backends
        with self.lock:
            stats = dict(self.stats)
        status = DiagnosticStatus()
        status.name = f'{self.node.get_name()}: scene tokenizer'
        status.hardware_id = 'perception'
        no_transform = stats['transform'].startswith('no transform')
        if stats['processed'] == 0 and stats['bad'] == 0:
            status.level, status.message = DiagnosticStatus.WARN, 'waiting for frames'
        elif stats['frame_status'] != 'ok':
            status.level, status.message = DiagnosticStatus.WARN, stats['frame_status'][:200]
        elif no_transform:
            status.level, status.message = DiagnosticStatus.WARN, stats['transform']
        else:
            status.level, status.message = DiagnosticStatus.OK, 'ok'
        status.values = [KeyValue(key=key, value=str(value)) for key, value in (
            ('frames received', stats['received']), ('frames processed', stats['processed']),
            ('frames dropped', stats['dropped']), ('bad frames', stats['bad']),
            ('frames without objects', stats['frames without objects']),
            ('objects in scene', stats['objects']), ('objects in frame', stats['frame_objects']),
            ('processing ms (last)', f'{stats["ms_last"]:.1f}'),
            ('processing ms (mean)', f'{stats["ms_mean"]:.1f}'),
            ('frame status', stats['frame_status']), ('transform', stats['transform']),
            ('last error', stats['last_error']), ('output frame', self.output_frame or ''),
            ('classifier', self.classifier_status), ('lifecycle', self.lifecycle),
            ('conversions', ', '.join(f'{k}: {v}' for k, v in backends().items())),
            *((f'refused {reason}', count) for reason, count in self.refused.counts().items()))]
        array = DiagnosticArray()
        array.header.stamp = self.node.get_clock().now().to_msg()
        array.status = [status]
        self.diagnostics_pub.publish(array)


def main(argv=None) -> int:
    from leo_ros.ros.node_runner import run_node
    return run_node('perception_node', PerceptionNode, argv, lifecycle=True)


if __name__ == '__main__':
    sys.exit(main())
