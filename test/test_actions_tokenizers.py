"""Action tokenizers: round trips, errors bounded by the resolution, grammar, save/load."""

import json
import math

from leo_ros.actions.tokenizers import (ActionCodec, BinConfig, BinTokenizer, RvqConfig,
                                        RvqTokenizer, SemanticTokenizer)
from leo_ros.actions.types import NAV_STEP_KINDS, NavGoal, NavStep, PickPlace
from leo_ros.actions.workspace import (ACTION_FIELDS, action_to_vector, actions_to_arrays,
                                       CONTINUOUS_KINDS, position_yaw_errors,
                                       sample_demonstrations, WorkspaceConfig)
import numpy as np
import pytest

TINY_RVQ = RvqConfig(codebook_size=32, nav_goal_levels=2, pose_levels=2, ee_delta_levels=2,
                     train_steps=4, batch_size=256, kmeans_iters=3)


@pytest.fixture(scope='module')
def demos():
    return sample_demonstrations(300, rng=np.random.default_rng(3))


@pytest.fixture(scope='module')
def rvq(demos):
    return RvqTokenizer(TINY_RVQ).fit(actions_to_arrays(demos), progress=False)


@pytest.mark.parametrize('step', NAV_STEP_KINDS)
def test_semantic_round_trip(step):
    tokenizer = SemanticTokenizer()
    tokens = tokenizer.encode(NavStep(step))
    assert tokens == [f'<{step}>']
    assert tokenizer.decode('nav_step', tokens) == NavStep(step)
    assert tokenizer.tokens_per_action('nav_step') == 1


def test_semantic_rejects_unknown_token():
    with pytest.raises(ValueError, match='not valid'):
        SemanticTokenizer().decode('nav_step', ['<jump>'])


@pytest.mark.parametrize('kind', CONTINUOUS_KINDS)
def test_bins_error_is_at_most_half_a_bin(kind, demos):
    config = BinConfig(position_resolution=0.05, yaw_resolution=math.radians(5))
    tokenizer = BinTokenizer(config)
    values = actions_to_arrays(demos)[kind]
    decoded = tokenizer.decode_values(kind, tokenizer.encode_values(kind, values))
    for column, field in enumerate(ACTION_FIELDS[kind]):
        error = np.abs(decoded[:, column] - values[:, column])
        if field.endswith('yaw') and field != 'dyaw':
            error = np.abs((error + np.pi) % (2 * np.pi) - np.pi)
            bound = config.yaw_resolution / 2
        elif field == 'dyaw':
            bound = config.yaw_resolution / 2
        elif field == 'gripper':
            bound = 0.5 / (config.gripper_bins - 1)
        else:
            bound = config.position_resolution / 2
        assert error.max() <= bound + 1e-9, field
    assert tokenizer.tokens_per_action(kind) == len(ACTION_FIELDS[kind])


def test_bins_token_round_trip_and_counts():
    tokenizer = BinTokenizer(BinConfig(position_resolution=0.1))
    action = PickPlace(1.0, -2.0, 0.5, 3.1, -4.9, 4.9, 1.4, -3.1)
    tokens = tokenizer.encode(action)
    assert len(tokens) == 8 and all(token.startswith('<bin_') for token in tokens)
    decoded = tokenizer.decode('pick_place', tokens)
    assert np.allclose(action_to_vector(decoded), action_to_vector(action), atol=0.06)
    assert tokenizer.bins('pick_x') == 100 and tokenizer.bins('pick_z') == 15


def test_bins_yaw_is_periodic():
    tokenizer = BinTokenizer(BinConfig(yaw_resolution=math.radians(10)))
    near_pi = tokenizer.decode('nav_goal', tokenizer.encode(NavGoal(0.0, 0.0, math.pi - 1e-4)))
    _, yaw_error = position_yaw_errors('nav_goal', [[0, 0, math.pi - 1e-4]],
                                       [action_to_vector(near_pi)])
    assert yaw_error[0] <= math.radians(5) + 1e-9


def test_bins_reject_a_token_outside_its_range():
    tokenizer = BinTokenizer(BinConfig(position_resolution=0.1))
    largest = f'<bin_{len(tokenizer.vocabulary()) - 1}>'
    with pytest.raises(ValueError, match='position 2'):   # z has 15 bins only
        tokenizer.decode('ee_delta',
                         ['<bin_0>', '<bin_0>', largest, '<bin_0>', '<bin_0>'])


def test_rvq_round_trip_matches_codes(rvq, demos):
    for kind in CONTINUOUS_KINDS:
        values = actions_to_arrays(demos)[kind]
        codes = rvq.encode_values(kind, values)
        assert codes.shape == (len(values), rvq.tokens_per_action(kind))
        action = demos[CONTINUOUS_KINDS.index(kind)]
        tokens = rvq.encode(action)
        assert len(tokens) == rvq.tokens_per_action(kind)
        decoded = rvq.decode(kind, tokens)
        expected = rvq.decode_values(kind, rvq.encode_values(kind, action_to_vector(action)[None]))
        assert np.allclose(action_to_vector(decoded), expected[0])


def test_rvq_more_levels_lower_error(demos):
    arrays = actions_to_arrays(demos)
    errors = []
    for levels in (1, 3):
        config = RvqConfig(codebook_size=16, nav_goal_levels=levels, train_steps=4,
                           batch_size=256, kmeans_iters=3)
        tokenizer = RvqTokenizer(config).fit({'nav_goal': arrays['nav_goal']}, progress=False)
        values = arrays['nav_goal']
        decoded = tokenizer.decode_values('nav_goal',
                                          tokenizer.encode_values('nav_goal', values))
        errors.append(np.median(position_yaw_errors('nav_goal', values, decoded)[0]))
    assert errors[1] < errors[0]


def test_rvq_save_load_is_exact(rvq, demos, tmp_path):
    rvq.save(tmp_path)
    state = json.loads((tmp_path / 'rvq.json').read_text())
    assert set(state['normalisation']) == {'nav_goal', 'pose', 'ee_delta'}
    loaded = RvqTokenizer.load(tmp_path)
    for kind, values in actions_to_arrays(demos).items():
        codes = rvq.encode_values(kind, values)
        assert np.array_equal(loaded.encode_values(kind, values), codes)
        assert np.array_equal(loaded.decode_values(kind, codes), rvq.decode_values(kind, codes))


def test_rvq_must_be_fitted():
    with pytest.raises(RuntimeError, match='fit'):
        RvqTokenizer(TINY_RVQ).encode(NavGoal(0.0, 0.0, 0.0))


@pytest.mark.parametrize('continuous', ['bins', 'rvq'])
def test_codec_round_trip_and_grammar(continuous, rvq, demos, tmp_path):
    codec = ActionCodec(continuous=rvq if continuous == 'rvq' else BinTokenizer())
    grammar = codec.grammar()
    assert set(grammar) == {f'<{kind}>' for kind in codec.kinds}
    for action in demos[:8]:
        tokens = codec.encode(action)
        assert tokens[0] == f'<{action.kind}>'
        assert len(tokens) - 1 == codec.tokens_per_action(action.kind)
        for token, allowed in zip(tokens[1:], grammar[tokens[0]]):
            assert token in allowed
        assert codec.decode(tokens).kind == action.kind
    codec.save(tmp_path)
    loaded = ActionCodec.load(tmp_path)
    assert loaded.vocabulary() == codec.vocabulary()
    for action in demos[:8]:
        assert loaded.encode(action) == codec.encode(action)


def test_codec_rejects_missing_marker():
    with pytest.raises(ValueError, match='start with'):
        ActionCodec().decode(['<bin_1>', '<bin_2>', '<bin_3>'])


def test_demonstrations_stay_in_the_workspace(demos):
    workspace = WorkspaceConfig()
    for kind, values in actions_to_arrays(demos).items():
        for column, field in enumerate(ACTION_FIELDS[kind]):
            low, high, _ = workspace.field_range(field)
            assert values[:, column].min() >= low and values[:, column].max() <= high
    assert {action.kind for action in demos} == set(CONTINUOUS_KINDS) | {'nav_step'}


@pytest.mark.parametrize('bad, match', [({'x_min': 5.0}, 'x_min'), ({'ee_max': 0.0}, 'ee_max')])
def test_workspace_config_names_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        WorkspaceConfig(**bad)


@pytest.mark.parametrize('bad, match', [({'codebook_size': 0}, 'codebook_size'),
                                        ({'ema_decay': 1.5}, 'ema_decay')])
def test_rvq_config_names_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        RvqConfig(**bad)
