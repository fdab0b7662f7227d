"""
The agent's node set, described once (pure Python, no ROS).

``launch/agent.launch.py`` turns it into launch_ros Nodes on a ROS 2 install and ``leo-agent``
into processes where ``ros2 launch`` is not available, so the two cannot drift apart.
"""

from dataclasses import dataclass, field, fields
from pathlib import Path

from leo_ros.ros.env import share_directory

#: input topics that can be remapped, argument name -> default topic
CAMERA_TOPICS = {
    'points_topic': 'camera/points',
    'depth_topic': 'camera/depth',
    'camera_info_topic': 'camera/camera_info',
    'image_topic': 'camera/image',
}


#: argument -> description (the launch files declare the same text; test_launch_files checks)
ARGUMENT_DESCRIPTIONS = {
    'model_path': "Policy directory; '' = the default model shipped with leo_ros "
                  '($LEO_MODEL overrides it)',
    'device': "Torch device: 'auto' (cuda if available), 'cpu', 'cuda', 'cuda:N'",
    'dtype': "Model dtype: 'auto' (bfloat16 on GPU, float32 on CPU), 'float32', 'bfloat16', "
             "'float16'",
    'use_sim': 'Also start the built-in world (sim_node)',
    'namespace': 'ROS namespace of every node',
    'config_file': 'Parameter file for every node (default: config/agent.yaml of leo_ros)',
    'fixed_frame': 'Frame of goals, reached checks and the scene memory (REP-105)',
    'dry_run': "Decode and report actions but move nothing: 'true', 'false', or 'auto' "
               '(true on a robot, false with use_sim); agent.launch.py defaults to true',
    'use_sim_time': 'Every node follows /clock (sim_node publishes it when this is true)',
    'points_topic': 'PointCloud2 input of perception_node',
    'depth_topic': 'Depth image input of perception_node (its parameter input:=depth)',
    'camera_info_topic': 'CameraInfo of the depth image',
    'image_topic': 'Colour image input of perception_node and policy_node',
    'rviz': 'Also start rviz2 with config/leo.rviz (when rviz2 is installed)',
    'log_level': 'ROS log level of every node (debug, info, warn, error)',
}
#: the managed nodes leo_lifecycle_manager brings to active, in order
MANAGED_NODES = ('perception_node', 'policy_node')


def _flag(value) -> bool:
    """Read a boolean that may arrive as launch text ('true', 'false', '1', ...)."""
    if isinstance(value, str):
        return value.lower() in ('1', 'true', 'yes', 'on')
    return bool(value)


@dataclass
class AgentArguments:
    """The arguments of agent.launch.py and leo-agent (same names, same defaults)."""

    model_path: str = ''            # policy directory ('' = the default model shipped in models/)
    device: str = 'auto'            # 'auto' (cuda if available), 'cpu', 'cuda', 'cuda:1'
    dtype: str = 'auto'             # 'auto', 'float32', 'bfloat16', 'float16'
    use_sim: bool = False           # also start the built-in world (sim_node)
    namespace: str = ''             # ROS namespace for all nodes
    config_file: str = ''           # parameter YAML ('' = config/agent.yaml)
    fixed_frame: str = 'map'
    dry_run: str = 'auto'           # 'auto': true on a robot, false with use_sim
    use_sim_time: bool = False
    points_topic: str = CAMERA_TOPICS['points_topic']
    depth_topic: str = CAMERA_TOPICS['depth_topic']
    camera_info_topic: str = CAMERA_TOPICS['camera_info_topic']
    image_topic: str = CAMERA_TOPICS['image_topic']
    rviz: bool = False              # also start rviz2 with config/leo.rviz
    log_level: str = 'info'

    def __post_init__(self):
        if self.dtype not in ('auto', 'float32', 'bfloat16', 'float16'):
            raise ValueError(f'AgentArguments.dtype must be auto, float32, bfloat16 or float16, '
                             f'got {self.dtype!r}')
        if not (self.device in ('auto', 'cpu', 'cuda') or self.device.startswith('cuda:')):
            raise ValueError(f'AgentArguments.device must be auto, cpu, cuda or cuda:N, got '
                             f'{self.device!r}')
        if self.namespace and not self.namespace.replace('/', '').replace('_', '').isalnum():
            raise ValueError(f'AgentArguments.namespace is not a valid ROS name: '
                             f'{self.namespace!r}')
        for name in ('use_sim', 'rviz', 'use_sim_time'):   # launch arguments arrive as text
            setattr(self, name, _flag(getattr(self, name)))
        if isinstance(self.dry_run, bool):
            self.dry_run = 'true' if self.dry_run else 'false'
        self.dry_run = str(self.dry_run).lower()
        if self.dry_run not in ('auto', 'true', 'false', '1', '0', 'yes', 'no', 'on', 'off'):
            raise ValueError(f"AgentArguments.dry_run must be 'true', 'false' or 'auto', got "
                             f'{self.dry_run!r}')
        if self.log_level.lower() not in ('debug', 'info', 'warn', 'error', 'fatal'):
            raise ValueError(f'AgentArguments.log_level must be debug, info, warn, error or '
                             f'fatal, got {self.log_level!r}')

    @property
    def moves(self) -> bool:
        """Return whether the policy may move the robot (dry_run resolved)."""
        if self.dry_run == 'auto':
            return self.use_sim
        return not _flag(self.dry_run)

    @property
    def parameter_file(self) -> Path:
        """Return the parameter YAML to load."""
        return Path(self.config_file) if self.config_file else \
            share_directory() / 'config' / 'agent.yaml'

    @classmethod
    def names(cls):
        """Return the argument names, in declaration order."""
        return [f.name for f in fields(cls)]


@dataclass
class NodeSpec:
    """One node of the set: what to run and how to configure it."""

    name: str
    executable: str                 # console script (of ``package``)
    parameters: dict = field(default_factory=dict)     # overrides on top of the YAML
    remappings: list = field(default_factory=list)     # (from, to) pairs
    package: str = 'leo_ros'
    arguments: list = field(default_factory=list)      # before --ros-args
    uses_parameter_file: bool = True


def agent_nodes(args: AgentArguments):
    """Return the nodes to start for ``args``, in start order."""
    camera = [(CAMERA_TOPICS[name], getattr(args, name)) for name in CAMERA_TOPICS
              if getattr(args, name) != CAMERA_TOPICS[name]]
    clock = {'use_sim_time': args.use_sim_time}
    nodes = []
    if args.use_sim:
        nodes.append(NodeSpec('sim_node', 'sim_node', {
            'map_frame': args.fixed_frame, 'publish_clock': args.use_sim_time, **clock}))
    perception = {'fixed_frame': args.fixed_frame, **clock}
    if args.use_sim:
        # The simulated camera gives instance masks, as LEO's datasets do.
        perception['instance_field'] = 'instance'
    nodes.append(NodeSpec('perception_node', 'perception_node', perception, camera))
    nodes.append(NodeSpec('policy_node', 'policy_node',
                          {'model_path': args.model_path, 'device': args.device,
                           'dtype': args.dtype, 'fixed_frame': args.fixed_frame,
                           'dry_run': not args.moves, **clock}, camera))
    # Brings the managed nodes above to active, as Nav2's lifecycle manager does.
    nodes.append(NodeSpec('leo_lifecycle_manager', 'leo_lifecycle_manager',
                          {'node_names': list(MANAGED_NODES), 'autostart': True, **clock},
                          uses_parameter_file=False))
    if args.rviz:
        nodes.append(NodeSpec('rviz2', 'rviz2', package='rviz2', uses_parameter_file=False,
                              arguments=['-d', str(share_directory() / 'config' / 'leo.rviz')]))
    return nodes


def ros_arguments(spec: NodeSpec, args: AgentArguments):
    """Return the ``--ros-args`` command line that configures ``spec`` like launch_ros does."""
    argv = list(spec.arguments) + ['--ros-args', '-r', f'__node:={spec.name}']
    if args.namespace:
        argv += ['-r', f'__ns:=/{args.namespace.strip("/")}']
    if spec.uses_parameter_file:
        argv += ['--params-file', str(args.parameter_file)]
    for name, value in spec.parameters.items():
        argv += ['-p', f'{name}:={_parameter_text(value)}']
    for source, target in spec.remappings:
        argv += ['-r', f'{source}:={target}']
    argv += ['--log-level', args.log_level]
    return argv


def _parameter_text(value) -> str:
    """Write a parameter value as YAML for ``-p name:=value`` (strings stay strings)."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        return "''" if value == '' else f"'{value}'"
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_parameter_text(item) for item in value) + ']'
    return str(value)
