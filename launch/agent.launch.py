"""
Start the leo_ros agent on a robot: perception_node, policy_node and their lifecycle manager.

``ros2 launch leo_ros agent.launch.py [model_path:=DIR] [device:=cuda] [dry_run:=false]
[namespace:=robot1] [points_topic:=/my/points] [config_file:=my.yaml] [rviz:=true]``

``dry_run`` defaults to true here: a first launch on a robot decodes and reports actions but
moves nothing until the user says ``dry_run:=false`` (``sim_agent.launch.py`` defaults to false).
perception_node and policy_node are lifecycle nodes; leo_lifecycle_manager configures and
activates them, as Nav2's lifecycle manager does. The same node set is described in
leo_ros/agent/node_set.py, which ``leo-agent`` runs where ``ros2 launch`` is not installed;
test/test_launch_files.py checks that this file and that description agree.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def _text(name):
    return ParameterValue(LaunchConfiguration(name), value_type=str)


def _flag(name):
    return ParameterValue(LaunchConfiguration(name), value_type=bool)


def _is_true(value):
    """Return the PythonExpression parts that test a launch argument's text for true."""
    return ["'", value, "'.lower() in ('1', 'true', 'yes', 'on')"]


def generate_launch_description():
    share = FindPackageShare('leo_ros')
    arguments = [
        DeclareLaunchArgument('model_path', default_value='', description=(
            "Policy directory; '' = the default model shipped with leo_ros ($LEO_MODEL "
            'overrides it)')),
        DeclareLaunchArgument('device', default_value='auto', description=(
            "Torch device: 'auto' (cuda if available), 'cpu', 'cuda', 'cuda:N'")),
        DeclareLaunchArgument('dtype', default_value='auto', description=(
            "Model dtype: 'auto' (bfloat16 on GPU, float32 on CPU), 'float32', 'bfloat16', "
            "'float16'")),
        DeclareLaunchArgument('use_sim', default_value='False', description=(
            'Also start the built-in world (sim_node)')),
        DeclareLaunchArgument('namespace', default_value='', description=(
            'ROS namespace of every node')),
        DeclareLaunchArgument('config_file', default_value=PathJoinSubstitution(
            [share, 'config', 'agent.yaml']), description=(
            'Parameter file for every node (default: config/agent.yaml of leo_ros)')),
        DeclareLaunchArgument('fixed_frame', default_value='map', description=(
            'Frame of goals, reached checks and the scene memory (REP-105)')),
        DeclareLaunchArgument('dry_run', default_value='true', description=(
            "Decode and report actions but move nothing: 'true', 'false', or 'auto' (true on "
            'a robot, false with use_sim); agent.launch.py defaults to true')),
        DeclareLaunchArgument('use_sim_time', default_value='False', description=(
            'Every node follows /clock (sim_node publishes it when this is true)')),
        DeclareLaunchArgument('points_topic', default_value='camera/points', description=(
            'PointCloud2 input of perception_node')),
        DeclareLaunchArgument('depth_topic', default_value='camera/depth', description=(
            'Depth image input of perception_node (its parameter input:=depth)')),
        DeclareLaunchArgument('camera_info_topic', default_value='camera/camera_info',
                              description='CameraInfo of the depth image'),
        DeclareLaunchArgument('image_topic', default_value='camera/image', description=(
            'Colour image input of perception_node and policy_node')),
        DeclareLaunchArgument('rviz', default_value='False', description=(
            'Also start rviz2 with config/leo.rviz (when rviz2 is installed)')),
        DeclareLaunchArgument('log_level', default_value='info', description=(
            'ROS log level of every node (debug, info, warn, error)')),
    ]
    config = LaunchConfiguration('config_file')
    namespace = LaunchConfiguration('namespace')
    log = ['--log-level', LaunchConfiguration('log_level')]
    use_sim = LaunchConfiguration('use_sim')
    # dry_run 'auto' resolves like leo-agent: true on a robot, false with use_sim.
    dry_run = PythonExpression([
        *_is_true(LaunchConfiguration('dry_run')), " or ('", LaunchConfiguration('dry_run'),
        "'.lower() == 'auto' and not ", *_is_true(use_sim), ')'])
    camera = [('camera/points', LaunchConfiguration('points_topic')),
              ('camera/depth', LaunchConfiguration('depth_topic')),
              ('camera/camera_info', LaunchConfiguration('camera_info_topic')),
              ('camera/image', LaunchConfiguration('image_topic'))]
    nodes = [
        Node(package='leo_ros', executable='sim_node', name='sim_node', namespace=namespace,
             condition=IfCondition(use_sim), output='screen', ros_arguments=log,
             parameters=[config, {'map_frame': _text('fixed_frame'),
                                  'publish_clock': _flag('use_sim_time'),
                                  'use_sim_time': _flag('use_sim_time')}]),
        Node(package='leo_ros', executable='perception_node', name='perception_node',
             namespace=namespace, output='screen', ros_arguments=log, remappings=camera,
             parameters=[config, {
                 'fixed_frame': _text('fixed_frame'), 'use_sim_time': _flag('use_sim_time'),
                 # The simulated camera gives instance masks, as LEO's datasets do.
                 'instance_field': ParameterValue(PythonExpression([
                     "'instance' if ", *_is_true(use_sim), " else ''"]), value_type=str)}]),
        Node(package='leo_ros', executable='policy_node', name='policy_node',
             namespace=namespace, output='screen', ros_arguments=log, remappings=camera,
             parameters=[config, {
                 'model_path': _text('model_path'), 'device': _text('device'),
                 'dtype': _text('dtype'), 'fixed_frame': _text('fixed_frame'),
                 'dry_run': ParameterValue(dry_run, value_type=bool),
                 'use_sim_time': _flag('use_sim_time')}]),
        Node(package='leo_ros', executable='leo_lifecycle_manager',
             name='leo_lifecycle_manager', namespace=namespace, output='screen',
             ros_arguments=log,
             parameters=[{'node_names': ['perception_node', 'policy_node'], 'autostart': True,
                          'use_sim_time': _flag('use_sim_time')}]),
        Node(package='rviz2', executable='rviz2', name='rviz2', namespace=namespace,
             condition=IfCondition(LaunchConfiguration('rviz')), output='screen',
             arguments=['-d', PathJoinSubstitution([share, 'config', 'leo.rviz'])]),
    ]
    return LaunchDescription(arguments + nodes)
