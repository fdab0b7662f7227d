"""
Start the agent together with the built-in world (sim_node).

``ros2 launch leo_ros sim_agent.launch.py`` is ``agent.launch.py use_sim:=true dry_run:=false``:
in the simulator the agent moves by default. Every other argument of agent.launch.py passes
through (``ros2 launch leo_ros sim_agent.launch.py rviz:=true use_sim_time:=true``).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    agent = PathJoinSubstitution([FindPackageShare('leo_ros'), 'launch', 'agent.launch.py'])
    return LaunchDescription([
        DeclareLaunchArgument('dry_run', default_value='false', description=(
            "Decode and report actions but move nothing: 'true', 'false', or 'auto' (true on "
            'a robot, false with use_sim); agent.launch.py defaults to true')),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(agent),
            launch_arguments={'use_sim': 'true',
                              'dry_run': LaunchConfiguration('dry_run')}.items()),
    ])
