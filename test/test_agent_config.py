"""config/agent.yaml sets every parameter every node declares, to its declared default."""

from dataclasses import fields
from pathlib import Path

import pytest
import yaml

CONFIG = Path(__file__).resolve().parents[1] / 'config' / 'agent.yaml'


def declared_parameters():
    """Return node name -> {parameter: default} from the nodes' own tables."""
    from leo_ros.nodes import perception_node, policy_node, sim_node
    policy = {}
    for table in (policy_node.AGENT_PARAMETERS, policy_node.SAFETY_PARAMETERS,
                  policy_node.NODE_PARAMETERS):
        policy.update({name: default for name, (default, _) in table.items()})
    return {
        'perception_node': {name: default for name, (default, _) in
                            perception_node.PARAMETERS.items()},
        'policy_node': policy,
        'sim_node': {f.name: f.default for f in fields(sim_node.SimNodeConfig)},
    }


@pytest.mark.parametrize('node', ['perception_node', 'policy_node', 'sim_node'])
def test_agent_yaml_covers_every_parameter(node):
    config = yaml.safe_load(CONFIG.read_text())
    section = config[f'/**/{node}']['ros__parameters']
    declared = declared_parameters()[node]
    assert set(section) == set(declared), (
        f'missing {sorted(set(declared) - set(section))}, '
        f'unknown {sorted(set(section) - set(declared))}')
    for name, default in declared.items():
        value = section[name]
        # ROS parameters are typed by their default: YAML must give the same type and value.
        assert type(value) is type(default) and value == default, \
            f'{node}.{name}: {value!r} in agent.yaml, but the node declares {default!r}'
