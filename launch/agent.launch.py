"""
Start the leo_ros agent: perception_node and policy_node (and sim_node with use_sim:=true).

``ros2 launch leo_ros agent.launch.py [model_path:=DIR] [device:=cuda] [use_sim:=true]
[namespace:=robot1] [points_topic:=/my/points] [config_file:=my.yaml] [rviz:=true]``

The node set comes from leo_ros.agent.node_set, which the ``leo-agent`` runner reads too.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from leo_ros.agent.node_set import agent_nodes, AgentArguments


def _nodes(context):
    values = {name: LaunchConfiguration(name).perform(context)
              for name in AgentArguments.names()}
    args = AgentArguments(**values)
    actions = []
    for spec in agent_nodes(args):
        parameters = [str(args.parameter_file), spec.parameters] \
            if spec.uses_parameter_file else []
        actions.append(Node(package=spec.package, executable=spec.executable, name=spec.name,
                            namespace=args.namespace, parameters=parameters,
                            remappings=spec.remappings, arguments=spec.arguments,
                            ros_arguments=['--log-level', args.log_level], output='screen'))
    return actions


def generate_launch_description():
    defaults = AgentArguments()
    arguments = [DeclareLaunchArgument(name, default_value=str(getattr(defaults, name)))
                 for name in AgentArguments.names()]
    return LaunchDescription(arguments + [OpaqueFunction(function=_nodes)])
