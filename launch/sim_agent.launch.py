"""
Start the agent together with the built-in world (sim_node).

``ros2 launch leo_ros sim_agent.launch.py`` is ``agent.launch.py use_sim:=true``; every
argument of agent.launch.py is passed through.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource


def generate_launch_description():
    agent = os.path.join(get_package_share_directory('leo_ros'), 'launch', 'agent.launch.py')
    return LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(agent), launch_arguments={'use_sim': 'true'}.items())])
