"""
The shipped default model against an untrained twin.

It loads through the default path and, closed loop on a handful of fixed test-split scenes,
beats a random-weights policy of the same configuration by a wide margin on every task family.
"""

import json

from leo_ros.train import default_model_path, load_policy
from leo_ros.train.evaluate import EvalConfig, FAMILIES, METRICS, run_episodes
from leo_ros.train.policy import LeoTrainedPolicy, random_like
import pytest

EPISODES = 3
#: least lead over the untrained twin: success fractions / caption token F1
MARGIN = {'success': 0.5, 'f1': 0.3}


@pytest.fixture(scope='module')
def model_dir():
    path = default_model_path()
    assert (path / 'config.json').is_file(), f'the shipped model is missing at {path}'
    return path


@pytest.fixture(scope='module')
def scores(model_dir):
    trained = LeoTrainedPolicy.load(model_dir)
    untrained = random_like(model_dir)
    results = {}
    for name, policy in (('trained', trained), ('random', untrained)):
        # Short answers bound the untrained twin's babbling; actions and QA need < 10 tokens.
        policy.config.max_answer_tokens = 24
        config = EvalConfig(episodes=EPISODES, seed=7, test_scenes=EPISODES, families=FAMILIES)
        results[name] = run_episodes(policy, config, progress=False)['metrics']
    return results


def test_shipped_model_is_small_and_self_describing(model_dir):
    size = sum(p.stat().st_size for p in model_dir.rglob('*') if p.is_file())
    assert size <= 30 * 1024 * 1024
    meta = json.loads((model_dir / 'config.json').read_text())
    assert meta['policy']['action_mode'] == 'grounded'
    assert 'training' in meta and 'timings_s' in meta
    for name in ('metrics.jsonl', 'curves.png', 'eval/eval.md'):
        assert (model_dir / name).is_file(), f'{name} missing beside the shipped model'


def test_default_loader_returns_the_trained_policy(model_dir):
    assert isinstance(load_policy(), LeoTrainedPolicy)


@pytest.mark.parametrize('family', FAMILIES)
def test_beats_random_weights(scores, family):
    name, kind = METRICS[family]
    trained, untrained = scores['trained'][name], scores['random'][name]
    assert trained >= untrained + MARGIN[kind], \
        f'{family}: trained {trained:.2f} vs random weights {untrained:.2f}'
