"""LeoPolicy on the tiny backbone: token space, grammar, loss, padding, decoding, save/load."""

import json

from leo_ros.actions.tokenizers import (ActionCodec, BinConfig, BinTokenizer, RvqConfig,
                                        RvqTokenizer)
from leo_ros.actions.workspace import sample_action_arrays
from leo_ros.model.batch import collate
from leo_ros.model.checkpoint import FORMAT, load_policy_dir, save_policy
from leo_ros.model.decoding import decode_answer
from leo_ros.model.loading import load_policy, resolve_device
from leo_ros.model.policy import LeoPolicy, nearest_objects
from leo_ros.model.prompt import INTENTS, REFUSE
from leo_ros.scene_tokens import SceneTokens
import numpy as np
from policy_helpers import (act, make_example, make_policy, make_scene, MAX_OBJECTS,
                            perturb_lora, text_encoder, tiny_config, tiny_llm)
import pytest
from safetensors.torch import load_file
import torch


@pytest.fixture(scope='module')
def policy():
    return make_policy()


def bins_codec():
    return ActionCodec(continuous=BinTokenizer(BinConfig(position_resolution=0.25)))


@pytest.fixture(scope='module')
def bins_policy():
    return make_policy(tiny_config(action_mode='bins'), bins_codec())


def test_token_space_numbers_vocabulary_added_tokens_and_objects(policy):
    space = policy.space
    vocabulary = policy.llm.get_output_embeddings().weight.shape[0]
    assert space.vocab_size == vocabulary and space.added == ('<nav_goal>', '<pick_place>',
                                                              REFUSE)
    assert space.id_of('<nav_goal>') == vocabulary
    assert space.object_start == vocabulary + 3 and len(space) == vocabulary + 3 + MAX_OBJECTS
    assert space.id_of('<obj_2>') == space.object_start + 2
    assert space.token_of(space.object_start + 2, policy.tokenizer) == '<obj_2>'
    assert space.token_of(vocabulary + 1, policy.tokenizer) == '<pick_place>'
    with pytest.raises(ValueError, match='beyond'):
        space.id_of(f'<obj_{MAX_OBJECTS}>')
    with pytest.raises(ValueError, match='not an added token'):
        space.id_of('<ee_delta>')


def test_answer_targets_are_words_then_special_tokens(policy):
    space, tokenizer = policy.space, policy.tokenizer
    ids = space.encode('Go to the red mug. <nav_goal> <obj_1>', tokenizer)
    assert ids[-2:] == [space.id_of('<nav_goal>'), space.id_of('<obj_1>')]
    text = ids[:-2]
    assert all(space.is_text(i) for i in text)
    assert text == tokenizer.encode(' Go to the red mug.')
    assert tokenizer.decode(text).strip() == 'Go to the red mug.'


def test_grammar_outside_an_action_allows_words_markers_and_refusal(policy):
    space, grammar = policy.space, policy.grammar
    free = grammar.allowed([], 3)
    assert free[:space.vocab_size].all()
    assert free[space.id_of('<nav_goal>')] and free[space.id_of(REFUSE)]
    assert not free[space.object_start:].any()       # object tokens only inside an action
    # after <refuse> only words: no action follows a refusal
    after = grammar.allowed([space.id_of(REFUSE)], 3)
    assert after[:space.vocab_size].all() and not after[space.vocab_size:].any()


@pytest.mark.parametrize('count', [1, 3, MAX_OBJECTS])
def test_grammar_after_a_marker_allows_present_objects_only(policy, count):
    space = policy.space
    allowed = policy.grammar.allowed([space.id_of('<nav_goal>')], count)
    assert allowed.nonzero().flatten().tolist() == \
        list(range(space.object_start, space.object_start + count))


def test_grammar_names_distinct_objects_and_closes_the_action(policy):
    space, grammar = policy.space, policy.grammar
    opened = [space.id_of('<pick_place>'), space.id_of('<obj_1>')]
    allowed = grammar.allowed(opened, 3)
    assert allowed.nonzero().flatten().tolist() == [space.object_start, space.object_start + 2]
    done = opened + [space.id_of('<obj_2>')]
    assert grammar.is_action_complete(done) and not grammar.is_action_complete(opened)


def test_required_action_opens_the_answer_then_ends_it(policy):
    space, grammar = policy.space, policy.grammar
    require = grammar.markers_of(['pick_place'])
    assert grammar.allowed([], 3, require).nonzero().flatten().tolist() == require
    done = [require[0], space.id_of('<obj_0>'), space.id_of('<obj_1>')]
    assert grammar.allowed(done, 3, require).nonzero().flatten().tolist() == \
        [policy.tokenizer.eos_id]


@pytest.mark.parametrize('mode', ['grounded', 'bins'])
def test_random_scores_under_the_grammar_always_decode(policy, bins_policy, mode):
    model = policy if mode == 'grounded' else bins_policy
    # within arm reach of one another: a pick-and-place needs no approach it cannot find
    grammar, scene = model.grammar, make_scene(3, spread=1.0)
    generator = torch.Generator().manual_seed(0)
    markers = sorted(grammar.positions)
    for trial in range(4 * len(markers)):
        generated = [markers[trial % len(markers)]]
        while not grammar.is_action_complete(generated):
            allowed = grammar.allowed(generated, len(scene))
            scores = torch.randn(len(allowed), generator=generator)
            generated.append(int(scores.masked_fill(~allowed, float('-inf')).argmax()))
        decision = decode_answer(generated, model, scene, np.arange(len(scene)), (0.5, 0.5, 0.3),
                                 is_free=lambda x, y: True)
        kind = model.space.token_of(generated[0], model.tokenizer)[1:-1]
        assert decision.error == '' and kind in [a.kind for a in decision.actions]


@pytest.mark.parametrize('kind', ['nav_goal', 'pick_place'])
def test_untrained_policy_still_emits_valid_actions(policy, kind):
    decision = act(policy, make_scene(5, spread=1.2), pose=(0.1, 0.2, 0.3),
                   require_action=[kind])
    assert decision.tokens[0] == f'<{kind}>' and decision.error == ''
    # a pick-and-place out of reach starts with an approach (leo_ros.model.decoding)
    assert kind in [a.kind for a in decision.actions]
    assert decision.tokenizer == 'grounded' and decision.intent in INTENTS


@pytest.mark.parametrize('kind', ['nav_goal', 'pick_place', 'nav_step'])
def test_untrained_coordinate_policy_emits_valid_actions(bins_policy, kind):
    decision = act(bins_policy, make_scene(3), pose=(1.0, -0.5, 0.7), require_action=[kind])
    assert decision.kind == kind and decision.error == '' and decision.tokenizer == 'bins'
    assert decision.tokens[0] == f'<{kind}>'


def biased_policy(marker):
    """Return a tiny policy whose first generated token is ``marker``."""
    policy = make_policy()
    with torch.no_grad():
        policy.added_head.bias[policy.space.added.index(marker)] = 1e3
    return policy


def test_constrained_decoding_names_present_objects_only():
    policy = biased_policy('<nav_goal>')
    scene = make_scene(3)
    decision = act(policy, scene)
    assert decision.tokens[0] == '<nav_goal>' and len(decision.tokens) == 2
    assert decision.tokens[1] in ('<obj_0>', '<obj_1>', '<obj_2>')
    assert decision.object_ids == [int(scene.ids[int(decision.tokens[1][5:-1])])]
    assert decision.kind == 'nav_goal' and decision.error == ''


def test_one_grounded_action_names_distinct_objects():
    policy = biased_policy('<pick_place>')
    with torch.no_grad():   # every object the same pointer score: greedy would name 0 twice
        policy.pointer_key.weight.zero_()
        policy.pointer_key.bias.zero_()
    decision = act(policy, make_scene(3), 'Put the mug on the table.')
    assert decision.tokens == ['<pick_place>', '<obj_0>', '<obj_1>']


def test_refusal_decodes_to_no_action():
    policy = biased_policy(REFUSE)
    decision = act(policy, make_scene(3), 'Go to the elephant.')
    assert decision.kind == 'refusal' and decision.tokens[0] == REFUSE
    assert decision.action is None and decision.actions == []
    assert not any(t.startswith('<obj_') or t == '<nav_goal>' for t in decision.tokens)


def test_loss_is_on_the_answer_only_and_reaches_the_encoders():
    policy = make_policy()
    policy.set_llm_mode('lora')
    perturb_lora(policy)
    scene = make_scene(4)
    examples = [make_example(policy, scene, '<nav_goal> <obj_2>'),
                make_example(policy, scene, 'A red mug on the brown table.')]
    batch = collate(examples, policy.tokenizer.pad_id)
    policy.train()
    out = policy(batch)
    # answer tokens (with their end of sequence), padding excluded
    assert int(out['count']) == len(examples[0].answer) + len(examples[1].answer)
    assert out['exact'].shape == (2,) and torch.isfinite(out['loss'])
    (out['loss'] + out['auxiliary']).backward()
    grads = {n: p.grad is not None and bool(p.grad.abs().sum() > 0)
             for n, p in policy.named_parameters() if p.requires_grad}
    assert any(g for n, g in grads.items() if 'lora_B' in n)
    assert any(g for n, g in grads.items() if n.startswith('scene.'))
    assert grads['pointer_key.weight'] and grads['added_head.weight']
    frozen = [n for n, p in policy.llm.named_parameters() if 'lora_' not in n and p.requires_grad]
    assert frozen == [] and not any(p.requires_grad for p in policy.object_encoder.parameters())
    # the loss reads the answer: another answer, another loss
    other = [make_example(policy, scene, '<nav_goal> <obj_1>'), examples[1]]
    with torch.no_grad():
        assert not torch.equal(policy(collate(other, policy.tokenizer.pad_id))['loss'],
                               out['loss'])


def test_padded_objects_and_answers_change_nothing(policy):
    small = make_example(policy, make_scene(3), '<nav_goal> <obj_1>')
    large = make_example(policy, make_scene(7, seed=5), 'A red mug on the brown table.',
                         'Describe the table.')
    pad = policy.tokenizer.pad_id
    with torch.no_grad():
        alone, other = policy(collate([small], pad)), policy(collate([large], pad))
        both = policy(collate([small, large], pad))
        encoded = policy.encode(collate([small], pad))
        padded = policy.encode(collate([small, large], pad))
    assert collate([small, large], pad).object_mask[0].tolist() == [True] * 3 + [False] * 4
    # sample_loss is the mean over answers of their mean token loss
    torch.testing.assert_close(both['sample_loss'],
                               (alone['sample_loss'] + other['sample_loss']) / 2)
    assert both['exact'].tolist() == alone['exact'].tolist() + other['exact'].tolist()
    for name in ('objects_llm', 'grounded', 'keys'):
        torch.testing.assert_close(getattr(padded, name)[0, :3], getattr(encoded, name)[0])
    torch.testing.assert_close(padded.extra[0], encoded.extra[0])


def test_the_shared_system_prefix_gives_the_loss_of_whole_prompts():
    # Training computes the system text's keys and values once per batch; with gradient
    # checkpointing every prompt carries its own system text instead: the same loss.
    shared = make_policy()
    whole = make_policy(tiny_config(llm=tiny_llm(gradient_checkpointing=True)))
    whole.load_state_dict(shared.state_dict())
    examples = [make_example(shared, make_scene(4), '<nav_goal> <obj_2>'),
                make_example(shared, make_scene(6, seed=2), 'A red mug on the brown table.',
                             'Describe the mug.')]
    batch = collate(examples, shared.tokenizer.pad_id)
    shared.train()
    whole.train()
    assert whole.llm.is_gradient_checkpointing and not shared.llm.is_gradient_checkpointing
    expected, out = shared(batch), whole(batch)
    torch.testing.assert_close(out['loss'], expected['loss'])
    torch.testing.assert_close(out['sample_loss'], expected['sample_loss'])
    out['loss'].backward()
    assert whole.llm.model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0


def test_nearest_objects_are_kept_in_scene_order():
    centers = np.array([[5.0, 0, 0], [1.0, 0, 0], [0.0, 3, 0], [0.5, 0.5, 0], [9.0, 9, 0]])
    assert nearest_objects(centers, (0.0, 0.0, 0.0), 3).tolist() == [1, 2, 3]
    assert nearest_objects(centers, (9.0, 9.0, 0.0), 2).tolist() == [0, 4]
    assert nearest_objects(centers, (0.0, 0.0, 0.0), 10).tolist() == [0, 1, 2, 3, 4]


def test_grounding_probe_reads_the_head_per_scene_object():
    policy = make_policy(tiny_config(max_objects=2))
    clouds = [np.random.default_rng(i).normal(size=(40, 3)) * 0.1 + [3.0 - i, 0.5 * i, 0.3]
              for i in range(3)]
    scene = SceneTokens.from_object_clouds(clouds, ids=[21, 7, 13], points_per_object=16)
    pose = (4.0, 0.0, 0.0)   # the policy reads the two nearest: rows 0, 1 are ids 21, 7
    decision = act(policy, scene, 'Go to the box.', pose, probe_grounding=True)
    assert sorted(decision.grounding) == [7, 21]
    # by hand: the head on the prepared example, rows mapped back to the scene's ids
    example, keep = policy.prepare(scene, None, 'Go to the box.', pose,
                                   text_encoder=text_encoder())
    assert [int(scene.ids[k]) for k in keep] == [21, 7]
    with torch.no_grad():
        logits = policy.encode(collate([example], policy.tokenizer.pad_id)).answer_logits
    expected = torch.sigmoid(logits)[0]                                   # (2, 2)
    for row, k in enumerate(keep):
        np.testing.assert_allclose(decision.grounding[int(scene.ids[k])], expected[row].numpy(),
                                   atol=1e-4)
    # asked for nothing, or no head to read: nothing
    assert act(policy, scene, pose=pose).grounding == {}
    plain = make_policy(tiny_config(grounding_loss=0.0, named_geometry=False,
                                    subject_head=False))
    assert act(plain, scene, pose=pose, probe_grounding=True).grounding == {}


def test_the_scene_prefix_is_reused_and_decides_the_same():
    # random adapters: long text answers that any error in the reused keys and values changes
    policy = make_policy()
    policy.set_llm_mode('lora')
    perturb_lora(policy)
    policy.eval()
    scene, other = make_scene(4), make_scene(5, seed=3)
    first = act(policy, scene, 'Go to the red mug.')
    described = act(policy, scene, 'Describe the table.')
    assert len(policy._caches) == 1       # one scene, one prefix
    assert len(first.token_ids) > 2 and described.token_ids != first.token_ids
    act(policy, other, 'Go to the red mug.')
    assert len(policy._caches) == 2
    again = act(policy, scene, 'Go to the red mug.')
    policy._caches.clear()
    fresh = act(policy, scene, 'Go to the red mug.')
    assert first.token_ids == again.token_ids == fresh.token_ids
    # the robot moved: another key, another prefix
    act(policy, scene, 'Go to the red mug.', pose=(1.0, 0.0, 0.0))
    assert len(policy._caches) == 2


def test_an_empty_scene_still_decides(policy):
    decision = act(policy, SceneTokens.empty(points_per_object=16), 'Where am I?')
    assert decision.kind in ('text', 'refusal') and decision.actions == []
    assert not any(t.startswith('<obj_') for t in decision.tokens)


def test_save_load_reproduces_outputs_exactly(tmp_path):
    policy = make_policy()
    policy.set_llm_mode('lora')
    perturb_lora(policy)
    policy.eval()
    scene = make_scene(5)
    batch = collate([make_example(policy, scene, 'Put the mug on the table. <pick_place> '
                                                 '<obj_1> <obj_3>')], policy.tokenizer.pad_id)
    with torch.no_grad():
        before = policy(batch)
    decision = act(policy, scene, 'Put the mug on the table.', (0.2, -0.4, 1.0))
    save_policy(policy, tmp_path / 'model')
    model = tmp_path / 'model'
    meta = json.loads((model / 'config.json').read_text())
    assert meta['format'] == FORMAT and meta['policy']['lora']
    assert meta['backbone'] == {'source': 'tiny'}
    for name in ('policy.safetensors', 'tokenizer/tokenizer.json', 'adapter/adapter_config.json',
                 'adapter/adapter_model.safetensors', 'classifier.safetensors', 'grounded.json'):
        assert (model / name).is_file(), name
    assert not (model / 'lora').exists()
    assert not [p for p in model.rglob('*') if p.suffix in ('.bin', '.pt', '.pkl', '.pth')]
    # the adapter holds LoRA weights only (no embedding copies), the policy file none of them
    assert all('lora_' in k for k in load_file(str(model / 'adapter' /
                                                   'adapter_model.safetensors')))
    assert not any('lora_' in k for k in load_file(str(model / 'policy.safetensors')))
    loaded = load_policy_dir(model)
    assert isinstance(loaded, LeoPolicy) and loaded.config.lora and not loaded.training
    with torch.no_grad():
        after = loaded(batch)
    assert torch.equal(after['loss'], before['loss'])
    assert torch.equal(after['auxiliary'], before['auxiliary'])
    again = act(loaded, scene, 'Put the mug on the table.', (0.2, -0.4, 1.0))
    assert again.token_ids == decision.token_ids and again.actions == decision.actions


def fitted_rvq():
    rvq = RvqTokenizer(RvqConfig(codebook_size=16, nav_goal_levels=2, pose_levels=2,
                                 ee_delta_levels=1, train_steps=2, batch_size=128,
                                 kmeans_iters=2))
    rvq.fit(sample_action_arrays(200), progress=False)
    return ActionCodec(continuous=rvq)


@pytest.mark.parametrize('mode', ['bins', 'rvq'])
def test_save_load_with_coordinate_actions(mode, tmp_path):
    codec = bins_codec() if mode == 'bins' else fitted_rvq()
    policy = make_policy(tiny_config(action_mode=mode), codec)
    scene = make_scene(4)
    decision = act(policy, scene, pose=(0.5, 1.0, -0.4), require_action=['nav_goal'])
    assert decision.kind == 'nav_goal' and decision.tokenizer == mode
    if mode == 'rvq':
        assert decision.tokens[1].startswith('<rvq_0_')
    save_policy(policy, tmp_path)
    assert (tmp_path / 'actions').is_dir()
    loaded = load_policy_dir(tmp_path)
    assert type(loaded.action_tokenizer.continuous) is type(codec.continuous)
    again = act(loaded, scene, pose=(0.5, 1.0, -0.4), require_action=['nav_goal'])
    assert again.token_ids == decision.token_ids and again.action == decision.action


def test_lora_trains_adapters_only():
    policy = make_policy()
    policy.set_llm_mode('full')
    assert all(p.requires_grad for p in policy.llm.parameters())
    policy.set_llm_mode('frozen')
    assert not any(p.requires_grad for p in policy.llm.parameters())
    policy.set_llm_mode('lora')
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert any('lora_A' in n for n in trainable) and any('lora_B' in n for n in trainable)
    assert not any(n.startswith('llm.') and 'lora_' not in n for n in trainable)
    assert not any(n.startswith('object_encoder.') for n in trainable)
    assert {'added_embed.weight', 'pointer_key.weight', 'robot'} <= trainable
    with pytest.raises(ValueError, match='already carries LoRA'):
        policy.set_llm_mode('full')


def test_a_few_steps_on_one_example_teach_its_action():
    policy = make_policy(seed=1)
    policy.set_llm_mode('full')
    scene = make_scene(4, seed=9)
    batch = collate([make_example(policy, scene, '<nav_goal> <obj_2>', 'Go to the box.')],
                    policy.tokenizer.pad_id)
    optimizer = torch.optim.Adam(policy.trainable_parameters(), lr=1e-2)
    policy.train()
    for _ in range(25):
        optimizer.zero_grad()
        out = policy(batch)
        out['loss'].backward()
        optimizer.step()
    assert out['loss'].item() < 0.1
    decision = act(policy.eval(), scene, 'Go to the box.')
    assert decision.tokens == ['<nav_goal>', '<obj_2>']
    assert decision.object_ids == [int(scene.ids[2])] and decision.kind == 'nav_goal'


def test_the_policy_builds_on_meta():
    policy = make_policy(tiny_config(llm=tiny_llm(device='meta')))
    tensors = list(policy.named_parameters()) + list(policy.named_buffers())
    assert tensors and [n for n, t in tensors if t.device.type != 'meta'] == []
    assert policy.in_use() == {'device': 'meta', 'dtype': 'float32'}


@pytest.mark.parametrize('device, dtype', [('cpu', 'bfloat16'), ('cpu', 'float32'),
                                           ('meta', 'bfloat16')])
def test_load_policy_reports_the_device_and_dtype_in_use(device, dtype, tmp_path):
    policy = make_policy()
    policy.set_llm_mode('lora')
    save_policy(policy, tmp_path)
    loaded = load_policy(tmp_path, device=device, dtype=dtype)
    assert loaded.in_use() == {'device': device, 'dtype': dtype}
    assert loaded.config.llm.device == device and loaded.config.llm.dtype == dtype
    for name, tensor in list(loaded.named_parameters()) + list(loaded.named_buffers()):
        assert tensor.device.type == device, name
        if name.startswith('llm.') and tensor.is_floating_point() and 'lora_' not in name:
            assert tensor.dtype == getattr(torch, dtype), name
        elif not name.startswith('llm.'):
            assert tensor.dtype != torch.bfloat16, name      # the encoders stay float32
    if device == 'cpu':
        assert act(loaded, make_scene(3), require_action=['nav_goal']).kind == 'nav_goal'


def test_auto_device_and_dtype():
    gpu = torch.cuda.is_available()
    assert resolve_device('auto', 'auto') == (('cuda', 'bfloat16') if gpu else ('cpu', 'float32'))
    assert resolve_device(None, None, 'bfloat16') == \
        (('cuda', 'bfloat16') if gpu else ('cpu', 'bfloat16'))
    assert resolve_device('cpu', 'float16') == ('cpu', 'float16')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_a_policy_on_the_gpu_keeps_every_tensor_there(tmp_path):
    policy = make_policy()
    policy.set_llm_mode('lora')
    perturb_lora(policy)
    save_policy(policy, tmp_path)
    loaded = load_policy(tmp_path, device='cuda', dtype='bfloat16')
    assert loaded.in_use() == {'device': 'cuda:0', 'dtype': 'bfloat16'}
    assert all(t.is_cuda for t in list(loaded.parameters()) + list(loaded.buffers()))
    decision = act(loaded, make_scene(4, spread=1.2), require_action=['pick_place'])
    assert decision.error == '' and 'pick_place' in [a.kind for a in decision.actions]
    batch = collate([make_example(loaded, make_scene(4), '<nav_goal> <obj_1>')],
                    loaded.tokenizer.pad_id).to('cuda')
    with torch.no_grad():
        assert torch.isfinite(loaded(batch)['loss'])


def test_a_serving_node_bounds_the_instruction_encodings():
    policy = make_policy()
    policy.set_text_cache_size(3)                  # before the encoder is loaded
    act(policy, make_scene(3))
    encoder = policy.text_encoder()
    assert encoder.cache_size == 3
    encoder.encode([f'Go to object {k}.' for k in range(5)])
    assert len(encoder.cache) == 3
    policy.set_text_cache_size(1)                  # and after
    assert list(encoder.cache) == ['Go to object 4.']
