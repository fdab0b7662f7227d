"""LeoPolicy: tokenizer, constrained decoding, answer-only loss, padding, exact save/load."""

from leo_ros.actions.tokenizers import ActionCodec, BinTokenizer, RvqConfig, RvqTokenizer
from leo_ros.actions.types import NavGoal, NavStep
from leo_ros.actions.workspace import sample_action_arrays
from leo_ros.model.config import (ImageEncoderConfig, LLMConfig, ObjectEncoderConfig,
                                  PolicyConfig, SpatialConfig, TextTokenizerConfig)
from leo_ros.model.policy import collate, IGNORE_INDEX, LeoPolicy
from leo_ros.model.text_tokenizer import ActionGrammarProcessor, TextTokenizer
from leo_ros.scene_tokens import SceneTokens
import numpy as np
import pytest
import torch


def tiny_config(**overrides):
    fields = {
        'objects': ObjectEncoderConfig(centroids=(8, 4), group_size=(8, 8),
                                       mlps=((8, 8), (8, 16), (16, 32))),
        'spatial': SpatialConfig(width=32, layers=2, heads=4),
        'image': ImageEncoderConfig(image_size=32, channels=(4, 8)),
        'llm': LLMConfig(hidden_size=32, intermediate_size=64, layers=2, heads=2, lora_r=4,
                         lora_alpha=8),
        'text': TextTokenizerConfig(vocab_size=400, min_frequency=1),
        'system_prompt': 'You are a robot.', 'max_new_tokens': 12}
    fields.update(overrides)
    return PolicyConfig(**fields)


def make_scene(count, seed=0, points=64):
    rng = np.random.default_rng(seed)
    clouds = [rng.normal(size=(80, 3)) * 0.1 + rng.uniform(-3, 3, 3) for _ in range(count)]
    colours = [rng.uniform(size=(80, 3)) for _ in range(count)]
    return SceneTokens.from_object_clouds(clouds, colours, points_per_object=points)


@pytest.fixture(scope='module')
def policy():
    model = LeoPolicy.create(tiny_config(), texts=['go to the red chair', 'pick up the cup'])
    # LoRA B starts at zero: make the adapters matter so save/load has something to prove
    with torch.no_grad():
        for name, parameter in model.llm.named_parameters():
            if 'lora_B' in name:
                parameter.normal_(std=0.05)
    return model.eval()


@pytest.fixture(scope='module')
def image():
    return (np.random.default_rng(1).uniform(size=(40, 50, 3)) * 255).astype(np.uint8)


def test_action_tokens_are_single_ids(policy):
    tokenizer = policy.tokenizer
    tokens = policy.codec.encode(NavGoal(1.0, 2.0, 0.5))
    ids = tokenizer.encode(''.join(tokens))
    assert tokenizer.tokens(ids) == tokens
    text_ids = tokenizer.encode('go to the red chair')
    assert tokenizer.decode(text_ids) == 'go to the red chair'


def test_bpe_trains_from_files(tmp_path):
    from pathlib import Path
    corpus = tmp_path / 'corpus.txt'
    corpus.write_text('turn left at the sofa\nthe lamp is on the desk\n' * 20)
    tokenizer = TextTokenizer.train([Path(corpus)], vocab_size=300, min_frequency=1)
    assert tokenizer.decode(tokenizer.encode('the lamp')) == 'the lamp'


def test_grammar_processor_enforces_the_action_grammar(policy):
    grammar = policy.grammar
    codec, tokenizer = policy.codec, policy.tokenizer
    payload = set(tokenizer.ids(codec.vocabulary())) - set(tokenizer.ids(codec.markers()))
    free = grammar.allowed([])
    assert not free[sorted(payload)].any() and free[tokenizer.ids(['<nav_goal>'])[0]]
    generator = torch.Generator().manual_seed(0)
    vocab = grammar.vocab_size
    for trial in range(20):
        # random scores, but the processor decides what may come out
        generated = tokenizer.ids([codec.markers()[trial % len(codec.markers())]])
        while generated[-1] != tokenizer.eos_id:
            scores = torch.randn(1, vocab, generator=generator)
            masked = grammar(torch.tensor([generated]), scores)
            generated.append(int(masked.argmax()))
        action = codec.decode(tokenizer.tokens(generated[:-1]))
        assert action.kind == codec.markers()[trial % len(codec.markers())][1:-1]


def test_require_action_forces_a_marker(policy):
    forced = policy.grammar.requiring_action(policy.tokenizer.ids(['<nav_step>']))
    allowed = forced.allowed([])
    assert allowed.sum() == 1 and allowed[policy.tokenizer.ids(['<nav_step>'])[0]]


@pytest.mark.parametrize('kind', ['nav_goal', 'nav_step', 'pick_place', 'ee_delta'])
def test_untrained_policy_still_emits_valid_actions(policy, image, kind):
    decision = policy.act(make_scene(5), image, 'go to the red chair', (0.1, 0.2, 0.3),
                          require_action=[kind])
    assert decision.kind == kind and decision.action is not None and decision.error == ''
    assert decision.tokens[0] == f'<{kind}>'


def test_beam_search_emits_valid_actions(policy, image):
    inputs = collate([make_scene(4), make_scene(6, seed=2)], ['go', 'pick'], [image, None],
                     [(0, 0, 0), (1, 1, 1)], image_size=32)
    decisions = policy.act_batch(inputs, num_beams=3, require_action=['nav_goal'])
    assert [d.kind for d in decisions] == ['nav_goal', 'nav_goal']


def test_free_text_decision_has_no_action(policy, image):
    decision = policy.act(make_scene(3), image, 'describe the room', max_new_tokens=6)
    assert decision.kind in ('text',) + policy.codec.kinds
    assert (decision.action is None) == (decision.kind == 'text')


def test_loss_is_on_the_answer_only(policy, image):
    answer = policy.format_answer('going', NavStep('forward'))
    inputs = collate([make_scene(3)], ['go forward'], [image], answers=[answer], image_size=32)
    _, labels, _ = policy._sequences(inputs, with_answers=True)
    supervised = labels[0][labels[0] != IGNORE_INDEX].tolist()
    assert supervised == policy.tokenizer.encode(answer) + [policy.tokenizer.eos_id]
    policy.train()
    loss = policy.loss(inputs)
    loss.backward()
    policy.eval()
    assert torch.isfinite(loss)
    grads = {name: p.grad is not None for name, p in policy.named_parameters() if p.requires_grad}
    assert any(g for name, g in grads.items() if 'lora_A' in name)
    assert any(g for name, g in grads.items() if name.startswith('objects.'))
    frozen = [name for name, p in policy.llm.named_parameters()
              if 'lora_' not in name and p.requires_grad]
    assert frozen == []
    policy.zero_grad(set_to_none=True)


def test_padded_objects_change_nothing(policy, image):
    small, large = make_scene(3), make_scene(7, seed=5)
    alone = collate([small], ['go to the cup'], [image], [(0.5, 0.5, 0.0)], image_size=32)
    batched = collate([small, large], ['go to the cup', 'go to the cup'], [image, image],
                      [(0.5, 0.5, 0.0)] * 2, image_size=32)
    assert batched.object_mask[0].sum() == 3 and batched.points.shape[1] == 7
    with torch.no_grad():
        assert torch.allclose(policy.logits(alone)[0], policy.logits(batched)[0], atol=1e-4)


def test_max_objects_keeps_the_nearest(policy):
    scene = make_scene(12)
    inputs = collate([scene], ['x'], max_objects=5, agent_poses=[(0.0, 0.0, 0.0)])
    kept = inputs.locations[0, :, :3].numpy()
    distances = np.linalg.norm(scene.centers[:, :2], axis=1)
    assert inputs.object_mask.sum() == 5
    assert np.linalg.norm(kept[:, :2], axis=1).max() <= np.sort(distances)[4] + 1e-6


def test_save_load_reproduces_outputs_exactly(policy, image, tmp_path):
    scene = make_scene(6)
    inputs = collate([scene], ['pick up the cup'], [image], [(0.2, -0.4, 1.0)], image_size=32)
    with torch.no_grad():
        before = policy.logits(inputs)
    decision = policy.act(scene, image, 'pick up the cup', (0.2, -0.4, 1.0),
                          require_action=['pick_place'])
    policy.save(tmp_path)
    assert (tmp_path / 'lora' / 'adapter_config.json').exists()
    loaded = LeoPolicy.load(tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded.logits(inputs), before)
    again = loaded.act(scene, image, 'pick up the cup', (0.2, -0.4, 1.0),
                       require_action=['pick_place'])
    assert again.token_ids == decision.token_ids and again.action == decision.action


def test_save_load_with_rvq_actions(image, tmp_path):
    rvq = RvqTokenizer(RvqConfig(codebook_size=16, nav_goal_levels=2, pose_levels=2,
                                 ee_delta_levels=1, train_steps=2, batch_size=128,
                                 kmeans_iters=2))
    rvq.fit(sample_action_arrays(200), progress=False)
    model = LeoPolicy.create(tiny_config(action_tokenizer='rvq'), rvq=rvq).eval()
    decision = model.act(make_scene(4), image, 'go', require_action=['nav_goal'])
    assert decision.tokens[1].startswith('<rvq_0_')
    model.save(tmp_path)
    loaded = LeoPolicy.load(tmp_path)
    assert isinstance(loaded.codec.continuous, RvqTokenizer)
    again = loaded.act(make_scene(4), image, 'go', require_action=['nav_goal'])
    assert again.token_ids == decision.token_ids and again.action == decision.action


def test_rvq_policy_needs_a_fitted_tokenizer():
    with pytest.raises(ValueError, match='fitted'):
        LeoPolicy.create(tiny_config(action_tokenizer='rvq'))


def test_grammar_processor_works_inside_generate():
    processor = ActionGrammarProcessor({5: [[7, 8], [9]]}, [7, 8, 9], eos_id=2, vocab_size=12)
    scores = torch.zeros(2, 12)
    out = processor(torch.tensor([[1, 5], [5, 7]]), scores)
    assert torch.isfinite(out[0]).nonzero().flatten().tolist() == [7, 8]
    assert torch.isfinite(out[1]).nonzero().flatten().tolist() == [9]
    done = processor(torch.tensor([[5, 7, 9]]), torch.zeros(1, 12))
    assert torch.isfinite(done[0]).nonzero().flatten().tolist() == [2]


def test_codec_is_shared_with_the_tokenizer(policy):
    assert isinstance(policy.codec, ActionCodec)
    assert isinstance(policy.codec.continuous, BinTokenizer)
    assert len(policy.tokenizer) >= len(policy.codec.vocabulary())


def test_a_few_steps_on_one_example_teach_its_action(image):
    config = tiny_config()
    config.llm.freeze_base = False
    model = LeoPolicy.create(config, texts=['go to the red chair'], seed=1)
    target = NavGoal(1.5, -2.0, 0.75)
    scene = make_scene(4, seed=9)
    inputs = collate([scene], ['go to the red chair'], [image], [(0.0, 0.0, 0.0)],
                     answers=[model.format_answer('', target)], image_size=32)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(40):
        optimiser.zero_grad()
        loss = model.loss(inputs)
        loss.backward()
        optimiser.step()
    decision = model.eval().act(scene, image, 'go to the red chair', (0.0, 0.0, 0.0))
    assert loss.item() < 0.05
    assert decision.tokens == model.codec.encode(target)
    assert decision.action == model.codec.decode(model.codec.encode(target))


def test_policy_on_a_local_pretrained_llm(image, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM
    tokenizer = TextTokenizer.train(['go to the red chair', 'You are a robot.'], 300, 1)
    model_dir = tmp_path / 'llm'
    tokenizer.save(model_dir)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32,
                                 intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=2)).save_pretrained(model_dir)
    config = tiny_config(llm=LLMConfig(source=str(model_dir), lora_r=4, lora_alpha=8),
                         text=TextTokenizerConfig(kind='pretrained'))
    policy = LeoPolicy.create(config).eval()
    # the base is frozen; LoRA and the rows of the added action tokens are trainable
    trainable = [name for name, p in policy.llm.named_parameters() if p.requires_grad]
    assert any('lora_' in name for name in trainable)
    assert any('trainable_tokens' in name for name in trainable)
    assert not any(name.endswith('embed_tokens.base_layer.weight') for name in trainable)
    decision = policy.act(make_scene(3), image, 'go', require_action=['nav_goal'])
    assert decision.kind == 'nav_goal'
    policy.save(tmp_path / 'policy')
    loaded = LeoPolicy.load(tmp_path / 'policy')
    again = loaded.act(make_scene(3), image, 'go', require_action=['nav_goal'])
    assert again.token_ids == decision.token_ids


def test_an_empty_scene_still_decides(policy):
    decision = policy.act(SceneTokens.empty(points_per_object=64), None, 'where am I',
                          require_action=['nav_step'])
    assert decision.kind == 'nav_step' and isinstance(decision.action, NavStep)
