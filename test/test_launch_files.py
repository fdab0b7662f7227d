"""
The launch files agree with leo_ros/agent/node_set.py, which leo-agent runs and the tests use.

``ros2 launch`` (launch, launch_ros) is not installable from the ROS wheels, so the launch files
are read as Python syntax trees: their arguments (names, defaults, descriptions), nodes
(package, executable, name), parameters and remappings are compared with the node set.
"""

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / 'launch' / 'agent.launch.py'
SIM_AGENT = ROOT / 'launch' / 'sim_agent.launch.py'


def _calls(tree, name):
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and getattr(node.func, 'id', getattr(node.func, 'attr', None)) == name]


def _keyword(call, name):
    return next((k.value for k in call.keywords if k.arg == name), None)


def _constant(node):
    return node.value if isinstance(node, ast.Constant) else None


def _assigned(tree, name):
    """Return the value assigned to variable ``name`` in the file."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == name
                                                for t in node.targets):
            return node.value
    raise AssertionError(f'{name} is never assigned')


def _arguments(tree):
    """Return {name: (default node, description)} of every DeclareLaunchArgument."""
    found = {}
    for call in _calls(tree, 'DeclareLaunchArgument'):
        name = _constant(call.args[0])
        found[name] = (_keyword(call, 'default_value'), _constant(_keyword(call, 'description')))
    return found


def _nodes(tree):
    """Return {name: {package, executable, parameters, uses_file, remaps}} of every Node."""
    found = {}
    for call in _calls(tree, 'Node'):
        parameters, uses_file = set(), False
        for item in getattr(_keyword(call, 'parameters'), 'elts', []):
            if isinstance(item, ast.Dict):
                parameters |= {_constant(key) for key in item.keys}
            elif isinstance(item, ast.Name) and item.id == 'config':
                uses_file = True
        remaps = _keyword(call, 'remappings')
        if isinstance(remaps, ast.Name):
            remaps = _assigned(tree, remaps.id)
        sources = {_constant(pair.elts[0]) for pair in getattr(remaps, 'elts', [])}
        found[_constant(_keyword(call, 'name'))] = {
            'package': _constant(_keyword(call, 'package')),
            'executable': _constant(_keyword(call, 'executable')),
            'parameters': parameters, 'uses_file': uses_file, 'remaps': sources}
    return found


def test_agent_launch_declares_the_arguments_of_the_node_set():
    from leo_ros.agent.node_set import AgentArguments, ARGUMENT_DESCRIPTIONS
    tree = ast.parse(AGENT.read_text())
    declared = _arguments(tree)
    assert list(declared) == AgentArguments.names()
    defaults = AgentArguments()
    for name, (default, description) in declared.items():
        assert description == ARGUMENT_DESCRIPTIONS[name], name
        if name == 'config_file':      # the package's config/agent.yaml, found by the index
            assert isinstance(default, ast.Call) and default.func.id == 'PathJoinSubstitution'
            parts = [_constant(e) for e in default.args[0].elts]
            assert parts[1:] == ['config', 'agent.yaml'], parts
        elif name == 'dry_run':        # a first launch on a robot moves nothing
            assert _constant(default) == 'true'
        else:
            assert _constant(default) == str(getattr(defaults, name)), name


def test_agent_launch_starts_the_nodes_of_the_node_set():
    from leo_ros.agent.node_set import agent_nodes, AgentArguments, CAMERA_TOPICS
    launched = _nodes(ast.parse(AGENT.read_text()))
    every = AgentArguments(use_sim=True, rviz=True, use_sim_time=True,
                           **{name: f'/other/{topic}' for name, topic in CAMERA_TOPICS.items()})
    specs = {spec.name: spec for spec in agent_nodes(every)}
    assert set(launched) == set(specs)
    for name, spec in specs.items():
        node = launched[name]
        assert (node['package'], node['executable']) == (spec.package, spec.executable), name
        assert node['parameters'] == set(spec.parameters), name
        assert node['uses_file'] == spec.uses_parameter_file, name
        assert node['remaps'] == {source for source, _ in spec.remappings}, name


def test_sim_agent_launch_includes_agent_launch_with_the_world_and_motion():
    from leo_ros.agent.node_set import ARGUMENT_DESCRIPTIONS
    tree = ast.parse(SIM_AGENT.read_text())
    declared = _arguments(tree)
    assert _constant(declared['dry_run'][0]) == 'false'
    assert declared['dry_run'][1] == ARGUMENT_DESCRIPTIONS['dry_run']
    include, = _calls(tree, 'IncludeLaunchDescription')
    passed = _keyword(include, 'launch_arguments').func.value
    assert {_constant(k): _constant(v) for k, v in zip(passed.keys, passed.values)}['use_sim'] \
        == 'true'
    path, = _calls(tree, 'PathJoinSubstitution')
    assert [_constant(e) for e in path.args[0].elts][1:] == ['launch', 'agent.launch.py']


@pytest.mark.parametrize('path', [AGENT, SIM_AGENT])
def test_launch_files_find_the_package_through_the_index(path):
    tree = ast.parse(path.read_text())
    assert _calls(tree, 'FindPackageShare') and _calls(tree, 'PathJoinSubstitution')
    imported = {node.module.split('.')[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom)}
    assert imported <= {'launch', 'launch_ros'}, imported


def test_rviz_topics_are_relative_so_a_namespace_works():
    config = yaml.safe_load((ROOT / 'config' / 'leo.rviz').read_text())
    topics = []

    def walk(item):
        if isinstance(item, dict):
            for key, value in item.items():
                if key == 'Topic' and isinstance(value, dict):
                    topics.append(value.get('Value', ''))
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)
    walk(config)
    assert topics and all(topic and not topic.startswith('/') for topic in topics), topics
