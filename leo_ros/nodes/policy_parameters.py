"""
policy_node's parameters: one table each for AgentConfig, SafetyConfig and the node itself.

Every entry has a description, both limits (numbers) or its choices (strings), and whether it
may change while the node runs. The safety parameters and the waits are live: a change is
checked, turned into a new SafetyConfig/AgentConfig and applied to the gate in one assignment,
or rejected with the reason. What sets up the node's connections (model, frames, topics,
actions) is read-only.
"""

import math

from leo_ros.ros.parameters import Spec

#: mapped onto AgentConfig (leo_ros.agent.core)
AGENT_PARAMETERS = {
    'model_path': Spec('', 'Policy directory; empty = the default model shipped with leo_ros',
                       read_only=True),
    'device': Spec('auto', "Torch device: 'auto' (cuda if available, else cpu), 'cpu', "
                   "'cuda', 'cuda:N'", read_only=True),
    'dtype': Spec('auto', "Model dtype: 'auto' (bfloat16 on GPU, on CPU the dtype the model "
                  "was trained in), 'float32', 'bfloat16', 'float16'",
                  choices=('auto', 'float32', 'bfloat16', 'float16'), read_only=True),
    'fixed_frame': Spec('map', 'Frame of navigation goals, reached checks, the scene and '
                        'manipulator poses (REP-105)', read_only=True),
    'max_steps': Spec(20, 'Most policy decisions one leo/execute task may take', 1, 1000),
    'goal_tolerance': Spec(0.35, 'A navigation goal counts as reached within this distance '
                           '[m] (goal_pose navigation; Nav2 decides itself)', 0.01, 10.0),
    'goal_timeout': Spec(60.0, 'Give up waiting for a navigation goal after this long [s]',
                         1.0, 3600.0),
}
#: mapped onto SafetyConfig (leo_ros.agent.safety); all live
SAFETY_PARAMETERS = {
    'map_min_x': Spec(-5.0, 'Map bounds in fixed_frame: goals must lie inside [m]',
                      -10000.0, 10000.0),
    'map_max_x': Spec(5.0, 'Map bounds [m]', -10000.0, 10000.0),
    'map_min_y': Spec(-5.0, 'Map bounds [m]', -10000.0, 10000.0),
    'map_max_y': Spec(5.0, 'Map bounds [m]', -10000.0, 10000.0),
    'workspace_min_z': Spec(0.0, 'Lowest manipulator pose [m]', -10.0, 10.0),
    'workspace_max_z': Spec(1.5, 'Highest manipulator pose [m]', -10.0, 10.0),
    'max_reach': Spec(1.2, 'Farthest pick/place pose from the base [m]', 0.01, 10.0),
    'max_linear_speed': Spec(0.5, 'Speed limit for cmd_vel [m/s]', 0.01, 5.0),
    'max_angular_speed': Spec(1.0, 'Turn rate limit for cmd_vel [rad/s]', 0.01, 10.0),
    'step_distance': Spec(0.25, 'Distance of one forward step [m]', 0.01, 5.0),
    'step_angle': Spec(math.radians(30.0), 'Angle of one turn step [rad]', 0.01, math.pi),
    'max_ee_step': Spec(0.1, 'Largest end-effector displacement per command [m]', 0.001, 1.0),
    'max_scene_age': Spec(5.0, 'Refuse to act on a scene older than this [s]', 0.1, 3600.0),
    'out_of_bounds': Spec('clamp', "Goals outside the map: 'clamp' into it or 'refuse' them",
                          choices=('clamp', 'refuse')),
    'dry_run': Spec(False, 'Decode and report actions but publish no motion'),
    'occupied_goal': Spec('move', "A goal in an occupied map cell: 'move' it to the nearest "
                          "free cell within max_goal_shift, or 'refuse' it",
                          choices=('move', 'refuse')),
    'max_goal_shift': Spec(1.0, 'Farthest a goal is moved to a free cell [m]', 0.0, 10.0),
}
#: mapped onto GroundingConfig (leo_ros.agent.grounding)
GROUNDING_PARAMETERS = {
    'unknown_words': Spec('refuse', 'A noun with no known category or a colour outside the '
                          "palette ('the elephant', 'crimson'): 'refuse' it at the gate, or "
                          "leave it to the 'model' (open vocabulary: the policy was trained "
                          'to refuse what is not there)', choices=('refuse', 'model')),
}
#: the node's own settings
NODE_PARAMETERS = {
    'base_frame': Spec('base_link', "The robot's base frame; its pose is looked up in "
                       'fixed_frame through TF', read_only=True),
    'tf_timeout': Spec(0.5, 'Wait this long for the fixed_frame -> base_frame transform '
                       'before a decision is refused [s]', 0.0, 10.0),
    'navigation': Spec('auto', "How goals are sent: 'nav2' (the NavigateToPose action), "
                       "'goal_pose' (a PoseStamped topic), 'auto' (nav2 when its server is "
                       'up, else goal_pose); never both',
                       choices=('auto', 'nav2', 'goal_pose'), read_only=True),
    'nav2_action': Spec('navigate_to_pose', "Nav2's NavigateToPose action name",
                        read_only=True),
    'nav2_timeout': Spec(2.0, 'Wait this long for the Nav2 server and for it to accept a '
                         'goal [s]', 0.1, 60.0),
    'manipulation_wait': Spec(3.0, 'Seconds leo/execute waits for a manipulation command to '
                              'finish', 0.0, 600.0),
    'publish_manipulator_command': Spec(True, 'Publish leo/manipulator_command '
                                        '(leo_ros/ManipulatorCommand)', read_only=True),
    'publish_ee_twist': Spec(True, 'Publish end-effector steps on leo/ee_twist '
                             '(geometry_msgs/TwistStamped, MoveIt Servo)', read_only=True),
    'ee_twist_duration': Spec(0.5, 'An end-effector step becomes a twist stream of this '
                              'length [s]', 0.05, 10.0),
    'ee_twist_rate': Spec(20.0, 'Rate of the twist stream [Hz]', 1.0, 500.0, read_only=True),
    'publish_grasp_poses': Spec(True, 'Publish pick and place targets on leo/pregrasp_pose, '
                                'leo/grasp_pose, leo/place_pose (PoseStamped)',
                                read_only=True),
    'pregrasp_offset': Spec(0.1, 'The pre-grasp pose lies this far above the grasp [m]',
                            0.0, 1.0),
    'use_gripper_action': Spec(True, 'Open and close the gripper through a '
                               'control_msgs/GripperCommand action (when control_msgs is '
                               'importable)', read_only=True),
    'gripper_action': Spec('gripper_controller/gripper_cmd', 'GripperCommand action name '
                           '(ros2_control gripper_action_controller)', read_only=True),
    'gripper_open_position': Spec(0.08, 'Gripper gap when open [m]', 0.0, 1.0),
    'gripper_closed_position': Spec(0.0, 'Gripper gap when closed [m]', 0.0, 1.0),
    'gripper_max_effort': Spec(10.0, 'Gripper effort limit [N]', 0.0, 10000.0),
    'diagnostics_period': Spec(1.0, 'Seconds between /diagnostics messages', 0.05, 60.0,
                               read_only=True),
    'torch_threads': Spec(1, 'CPU threads for the policy (0: torch default); on a shared CPU '
                          'one thread avoids contention with perception and the simulator',
                          0, 256, read_only=True),
}
#: every parameter of policy_node
ALL_PARAMETERS = {**AGENT_PARAMETERS, **SAFETY_PARAMETERS, **GROUNDING_PARAMETERS,
                  **NODE_PARAMETERS}
