"""config/agent.yaml sets every parameter every node declares, to its declared default."""

from pathlib import Path

import pytest
import yaml

CONFIG = Path(__file__).resolve().parents[1] / 'config' / 'agent.yaml'


def declared_parameters():
    """Return node name -> {parameter: Spec} from the nodes' own tables."""
    from leo_ros.nodes import perception_node, policy_parameters, sim_node
    return {'perception_node': perception_node.PARAMETERS,
            'policy_node': policy_parameters.ALL_PARAMETERS,
            'sim_node': sim_node.SIM_PARAMETERS}


@pytest.mark.parametrize('node', ['perception_node', 'policy_node', 'sim_node'])
def test_agent_yaml_covers_every_parameter(node):
    config = yaml.safe_load(CONFIG.read_text())
    section = config[f'/**/{node}']['ros__parameters']
    declared = declared_parameters()[node]
    assert set(section) == set(declared), (
        f'missing {sorted(set(declared) - set(section))}, '
        f'unknown {sorted(set(section) - set(declared))}')
    for name, spec in declared.items():
        value = section[name]
        # ROS parameters are typed by their default: YAML must give the same type and value.
        assert type(value) is type(spec.default) and value == spec.default, \
            f'{node}.{name}: {value!r} in agent.yaml, but the node declares {spec.default!r}'


@pytest.mark.parametrize('node', ['perception_node', 'policy_node', 'sim_node'])
def test_every_number_has_both_limits_and_every_parameter_a_description(node):
    for name, spec in declared_parameters()[node].items():
        assert spec.description, name
        if isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool):
            assert spec.low is not None and spec.high is not None, name
            assert spec.low <= spec.default <= spec.high, name


def test_a_number_without_limits_or_a_default_outside_them_is_a_bad_table():
    from leo_ros.ros.parameters import Spec
    with pytest.raises(ValueError, match='both limits'):
        Spec(1.0, 'no limits')
    with pytest.raises(ValueError, match='outside'):
        Spec(5.0, 'too big', 0.0, 1.0)
    with pytest.raises(ValueError, match='not one of'):
        Spec('x', 'a choice', choices=('a', 'b'))
    spec = Spec('a', 'a choice', choices=('a', 'b'))
    assert spec.check('p', 'b') == '' and 'one of' in spec.check('p', 'c')
    assert 'finite' in Spec(1.0, 'finite', 0.0, 2.0).check('p', float('nan'))


def test_descriptors_carry_ranges_and_read_only():
    from leo_ros.nodes.policy_parameters import ALL_PARAMETERS
    from leo_ros.ros.parameters import descriptor
    speed = descriptor('max_linear_speed', ALL_PARAMETERS['max_linear_speed'])
    assert speed.floating_point_range[0].from_value == 0.01 and not speed.read_only
    assert speed.floating_point_range[0].to_value == 5.0
    steps = descriptor('max_steps', ALL_PARAMETERS['max_steps'])
    assert (steps.integer_range[0].from_value, steps.integer_range[0].to_value) == (1, 1000)
    assert descriptor('model_path', ALL_PARAMETERS['model_path']).read_only
    assert 'clamp' in descriptor('out_of_bounds',
                                 ALL_PARAMETERS['out_of_bounds']).additional_constraints
