"""Training the policy: frames, geometry, grounding marks and heads, targets, trainer, configs."""

import json
import math
from pathlib import Path

from leo_ros.actions.grounded import GroundedTokenizer
from leo_ros.actions.types import NavGoal, PickPlace
from leo_ros.model.batch import collate
from leo_ros.model.checkpoint import load_policy_dir, save_policy
from leo_ros.model.config import LLMConfig
from leo_ros.model.decoding import decode_grounded
from leo_ros.model.features import (action_from_robot_frame, action_to_robot_frame,
                                    from_robot_frame, object_features, to_robot_frame)
from leo_ros.model.prompt import INTENTS
from leo_ros.model.spatial import named_geometry, pair_values, pairwise_features
from leo_ros.train.ablation import finished_metrics, variant_config, VARIANTS
from leo_ros.train.dataset import (answer_object_ids, grounding_of, intent_of, subject_of,
                                   target_answer)
from leo_ros.train.pipeline import stage_mode, TrainConfig
from leo_ros.train.text import repeated_phrases, token_f1
from leo_ros.train.trainer import (load_optimizer, lr_factor, run_stage, save_optimizer,
                                   StageConfig)
import numpy as np
from policy_helpers import act, make_example, make_policy, make_scene, tiny_config
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize('pose', [(0.0, 0.0, 0.0), (1.5, -2.0, 0.7), (3.0, 4.0, -2.9)])
def test_robot_frame_round_trip(pose):
    points = np.array([[1.0, 2.0, 0.5], [-3.0, 0.5, 1.0]], np.float32)
    np.testing.assert_allclose(from_robot_frame(to_robot_frame(points, pose), pose), points,
                               atol=1e-5)
    goal = NavGoal(2.0, 1.0, 0.3)
    back = action_from_robot_frame(action_to_robot_frame(goal, pose), pose)
    assert back.x == pytest.approx(goal.x) and back.y == pytest.approx(goal.y)
    assert back.yaw == pytest.approx(goal.yaw)
    pick = PickPlace(1, 2, 0.8, 0.1, 3, 1, 0.9, -0.2)
    back = action_from_robot_frame(action_to_robot_frame(pick, pose), pose)
    np.testing.assert_allclose([back.pick_x, back.place_y, back.place_z], [1, 1, 0.9],
                               atol=1e-6)


def test_robot_frame_is_forward_left():
    # Facing +y: a point further along +y is ahead (x > 0); one at -x is to the left (y > 0).
    ego = to_robot_frame(np.array([[0.0, 2.0, 0.0], [-1.0, 0.0, 0.0]]), (0.0, 0.0, math.pi / 2))
    np.testing.assert_allclose(ego[:, :2], [[2.0, 0.0], [0.0, 1.0]], atol=1e-6)


def test_object_features_are_embedding_colour_robot_frame_centre_and_size():
    scene = make_scene(3)
    embeddings = np.arange(3 * 8, dtype=np.float32).reshape(3, 8)
    pose = (1.0, 2.0, 0.5)
    features, centers = object_features(embeddings, scene, pose)
    assert features.shape == (3, 8 + 9) and features.dtype == np.float32
    np.testing.assert_array_equal(features[:, :8], embeddings)
    np.testing.assert_allclose(features[:, 8:11], scene.colors)
    np.testing.assert_allclose(centers, to_robot_frame(scene.centers, pose), atol=1e-6)
    np.testing.assert_allclose(features[:, 11:14], centers)
    np.testing.assert_allclose(features[:, 14:], scene.sizes)


def test_pairwise_features_match_direct_computation():
    centers = torch.tensor([[[0.0, 0.0, 0.0], [3.0, 4.0, 12.0], [1.0, 0.0, 0.0]]])
    pair = pairwise_features(centers)
    assert pair.shape == (1, 3, 3, 5)
    # pair[i, j] describes j relative to i: (3, 4, 12) from the origin
    distance, planar = 13.0, 5.0
    np.testing.assert_allclose(pair[0, 0, 1].numpy(),
                               [distance, 12 / distance, planar / distance, 4 / planar,
                                3 / planar], rtol=1e-5)
    np.testing.assert_allclose(pair[0, 1, 0].numpy()[[0, 1, 3, 4]],
                               [distance, -12 / distance, -4 / planar, -3 / planar], rtol=1e-5)


def test_pair_values_say_where_the_other_object_is():
    # Object 1 stands 1 m ahead and 2 m to the left of object 0, twice as long in x.
    centers = torch.tensor([[[0.0, 0.0, 0.5], [1.0, 2.0, 0.5]]])              # (1, 2, 3)
    sizes = torch.tensor([[[0.2, 0.2, 0.2], [0.4, 0.2, 0.2]]])                # (1, 2, 3)
    values = pair_values(centers, sizes)
    assert values.shape == (1, 2, 2, 10)
    seen_from_0 = values[0, 0, 1]
    torch.testing.assert_close(seen_from_0[:5], torch.tensor(
        [1.0, 2.0, 0.0, math.sqrt(5.0), math.sqrt(5.0)]))
    torch.testing.assert_close(seen_from_0[5:], torch.tensor(
        [math.log(2.0), 0.0, 0.0, math.log(2.0), 0.0]))
    # seen from object 1, everything flips: behind, to the right, smaller
    torch.testing.assert_close(values[0, 1, 0, :3], -seen_from_0[:3])
    torch.testing.assert_close(values[0, 1, 0, 8:], seen_from_0[8:].flip(0))
    assert torch.count_nonzero(values[0, 0, 0]) == 0


def test_named_geometry_says_where_the_other_named_objects_are():
    # A at the origin and B 1 m to its left are named; C, 2 m ahead, is not (nor is padding)
    centers = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [2.0, 0.0, 0.0],
                             [9.0, 9.0, 9.0]]])
    sizes = torch.tensor([[[0.1, 0.1, 0.1], [0.4, 0.1, 0.1], [0.1, 0.1, 0.1], [5.0, 5.0, 5.0]]])
    named = torch.tensor([[1.0, 1.0, 0.0, 1.0]])
    mask = torch.tensor([[True, True, True, False]])
    features = named_geometry(centers, sizes, named, mask)
    assert features.shape == (1, 4, 6)
    shrink = 1 / (1 + 1e-3)  # the mean's guard against no other named object
    # A reads B: to the left (+y), four times longer, four times the volume
    torch.testing.assert_close(features[0, 0], torch.tensor(
        [0.0, shrink, 0.0, math.log(4) * shrink, math.log(4) * shrink, 1.0]))
    # B reads A: everything flips
    torch.testing.assert_close(features[0, 1, :5], -features[0, 0, :5])
    # C reads the mean of A and B (weight 2); an object named alone reads nothing
    torch.testing.assert_close(features[0, 2, :2], torch.tensor([-2.0, 0.5]) * 2 / 2.001)
    assert features[0, 2, 5] == 2.0
    alone = named_geometry(centers, sizes, torch.tensor([[1.0, 0.0, 0.0, 0.0]]), mask)
    assert torch.count_nonzero(alone[0, 0]) == 0


def marked_batch(policy, count=2, subject=(-1, -1, -1)):
    """Return a batch of 4, 3 (and 2) objects; the first two carry grounding marks."""
    scenes = [make_scene(4 - k, seed=k + 1, spread=2.0) for k in range(count)]
    examples = [make_example(policy, scene, '<nav_goal> <obj_0>') for scene in scenes]
    examples[0].grounding = np.array([[1, 1], [0, 1], [0, 0], [0, 0]], np.float32)
    examples[1].grounding = np.array([[0, 0], [0, 0], [1, 1]], np.float32)
    for example, row in zip(examples, subject):
        example.subject = row
    return collate(examples, policy.tokenizer.pad_id), examples


def train_auxiliary(policy, batch, steps, lr):
    """Train on the auxiliary loss alone (Adam), then return the policy in eval mode."""
    optimizer = torch.optim.Adam(policy.trainable_parameters(), lr=lr)
    policy.train()
    for _ in range(steps):
        optimizer.zero_grad()
        policy(batch)['auxiliary'].backward()
        optimizer.step()
    return policy.eval()


def copy_into(policy, config):
    """Return a policy of ``config`` holding ``policy``'s weights where names match."""
    plain = make_policy(config)
    plain.load_state_dict(policy.state_dict(), strict=False)
    return plain.eval()


def assert_moves_and_reloads(policy, plain, batch, tmp_path, switch):
    """Check the (perturbed) addition changes the loss and a saved policy keeps it."""
    with torch.no_grad():
        moved = policy(batch)['loss']
        assert not torch.equal(moved, plain(batch)['loss'])
    save_policy(policy, tmp_path / 'model')
    loaded = load_policy_dir(tmp_path / 'model')
    assert getattr(loaded.config.scene, switch)
    with torch.no_grad():
        assert torch.equal(moved, loaded(batch)['loss'])


def test_pair_values_start_as_leo_and_learn(tmp_path):
    policy = make_policy(tiny_config(pair_values=True))
    batch, _ = marked_batch(policy)
    plain = copy_into(policy, tiny_config(pair_values=False))
    # zero-initialised: the same loss as LEO's layer
    with torch.no_grad():
        torch.testing.assert_close(policy(batch)['loss'], plain(batch)['loss'])
    policy.train()
    policy(batch)['loss'].backward()
    assert policy.scene.scene_layers[0].pair_value.grad.abs().sum() > 0
    policy.eval()
    with torch.no_grad():
        for layer in policy.scene.scene_layers:
            layer.pair_value.normal_()
    assert_moves_and_reloads(policy, plain, batch, tmp_path, 'pair_values')


def test_grounding_loss_reads_marked_rows_only_and_learns(tmp_path):
    options = {'named_geometry': False, 'subject_head': False}
    policy = make_policy(tiny_config(grounding_loss=0.5, **options))
    batch, examples = marked_batch(policy, count=3)   # the third example carries no marks
    assert batch.grounding.shape == (3, 4, 2)
    assert batch.grounding_mask.tolist() == [True, True, False]
    with torch.no_grad():
        out = policy(batch)
        logits = policy.encode(batch).answer_logits                      # (3, 4, 2)
    torch.testing.assert_close(out['auxiliary'], 0.5 * out['grounding_loss'])
    # by hand: binary cross-entropy over the marked examples' real objects only
    rows = torch.cat([logits[0], logits[1, :3]])                        # (7, 2)
    marks = torch.from_numpy(np.concatenate([examples[0].grounding, examples[1].grounding]))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(rows, marks)
    torch.testing.assert_close(out['grounding_loss'], expected)
    # the head changes nothing else: the answer loss equals the one without it
    plain = copy_into(policy, tiny_config(grounding_loss=0.0, grounded_tokens=False, **options))
    same = copy_into(policy, tiny_config(grounding_loss=0.5, grounded_tokens=False, **options))
    with torch.no_grad():
        assert plain.scene.grounding is None and 'grounding_loss' not in plain(batch)
        torch.testing.assert_close(same(batch)['loss'], plain(batch)['loss'])
    # the auxiliary loss alone trains the scene encoder ...
    policy.train()
    policy(batch)['auxiliary'].backward()
    assert policy.scene.scene_layers[0].qkv.weight.grad.abs().sum() > 0
    train_auxiliary(policy, batch, 30, lr=0.01)
    with torch.no_grad():
        learned = policy(batch)
    assert learned['grounding_loss'] < 0.2 * out['grounding_loss']
    assert int(learned['grounding_hits']) == int(learned['grounding_count']) == 2
    # ... and a saved policy keeps it
    save_policy(policy, tmp_path / 'model')
    loaded = load_policy_dir(tmp_path / 'model')
    assert loaded.config.scene.grounding_loss == 0.5
    with torch.no_grad():
        assert torch.equal(loaded(batch)['grounding_loss'], learned['grounding_loss'])


def test_named_geometry_starts_as_the_policy_without_it_and_learns(tmp_path):
    policy = make_policy(tiny_config(named_geometry=True, subject_head=False))
    batch, examples = marked_batch(policy)
    plain = copy_into(policy, tiny_config(named_geometry=False, subject_head=False))
    with torch.no_grad():
        out = policy(batch)
        early = policy.encode(batch).early[..., 0]                      # (2, 4)
        # zero-initialised input: the same answer and grounding losses as without it
        torch.testing.assert_close(out['loss'], plain(batch)['loss'])
        torch.testing.assert_close(out['grounding_loss'], plain(batch)['grounding_loss'])
    # the early head is scored on the named marks (second column) of real, marked objects
    rows = torch.cat([early[0], early[1, :3]])
    named = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(rows, named)
    torch.testing.assert_close(out['auxiliary'], 0.5 * (out['grounding_loss'] + expected))
    policy.train()
    policy(batch)['auxiliary'].backward()
    assert policy.scene.early[1].weight.grad.abs().sum() > 0
    assert policy.scene.named_in.weight.grad.abs().sum() > 0
    policy.eval()
    with torch.no_grad():
        policy.scene.named_in.weight.normal_()
    assert_moves_and_reloads(policy, plain, batch, tmp_path, 'named_geometry')


def test_subject_head_points_at_what_the_text_is_about(tmp_path):
    policy = make_policy(tiny_config(named_geometry=True, subject_head=True))
    # the second example has no subject (a count, a size question)
    batch, _ = marked_batch(policy, subject=(1, -1))
    assert batch.subject.tolist() == [1, -1]
    with torch.no_grad():
        out = policy(batch)
        early = policy.encode(batch).early                              # (2, 4, 2)
    rows = torch.cat([early[0, :, 0], early[1, :3, 0]])
    named = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    expected = out['grounding_loss'] \
        + torch.nn.functional.binary_cross_entropy_with_logits(rows, named) \
        + torch.nn.functional.cross_entropy(early[:1, :, 1], torch.tensor([1]))
    torch.testing.assert_close(out['auxiliary'], 0.5 * expected)
    # the subject's probability enters the tokens (its input column starts at zero) ...
    policy.train()
    policy(batch)['auxiliary'].backward()
    assert policy.scene.named_in.weight.grad[:, -1].abs().sum() > 0
    # ... and the head learns to point at it
    train_auxiliary(policy, batch, 15, lr=0.02)
    with torch.no_grad():
        assert int(policy.encode(batch).early[0, :, 1].argmax()) == 1
    save_policy(policy, tmp_path / 'model')
    assert load_policy_dir(tmp_path / 'model').config.scene.subject_head


def test_the_intent_head_learns_what_the_instruction_asks_for():
    policy = make_policy()
    scene = make_scene(3)
    examples = [make_example(policy, scene, '<nav_goal> <obj_0>', 'Go to the box.'),
                make_example(policy, scene, 'Yes', 'Is there a box?'),
                make_example(policy, scene, 'A red mug.', 'Describe the mug.')]
    for number, example in enumerate(examples):
        example.intent = number
    batch = collate(examples, policy.tokenizer.pad_id)
    optimizer = torch.optim.Adam(policy.intent.parameters(), lr=0.1)
    for _ in range(12):
        optimizer.zero_grad()
        policy(batch)['intent_loss'].backward()
        optimizer.step()
    decided = [act(policy.eval(), scene, text).intent
               for text in ('Go to the box.', 'Is there a box?', 'Describe the mug.')]
    assert decided == list(INTENTS)


VIEW = {'index': {10: 0, 11: 1, 12: 2}}


@pytest.mark.parametrize('sample, family, expected', [
    ({'kind': 'qa_relation', 'target_ids': [12, 10]}, 'qa', 2),   # the subject, not the anchor
    ({'kind': 'pick_place', 'target_ids': [11, 12]}, 'pick_place', 1),
    ({'kind': 'object_caption', 'target_ids': [10]}, 'refer', 0),
    ({'kind': 'qa_size', 'target_ids': [12]}, 'qa', -1),          # the winner is no subject
    ({'kind': 'qa_count', 'target_ids': [10, 11]}, 'qa', -1),
    ({'kind': 'nav', 'target_ids': [99]}, 'nav', -1),             # not in the view
    ({'kind': 'refusal', 'target_ids': []}, 'refusal', -1),
])
def test_subject_of(sample, family, expected):
    assert subject_of(sample, family, VIEW) == expected


def test_grounding_marks_follow_the_view():
    # a size question: the answer rests on the winner (12), the text names both and the view
    # lacks object 99
    sample = {'target_ids': [12], 'mentioned_ids': [11, 12, 99]}
    np.testing.assert_array_equal(grounding_of(sample, 'qa', VIEW), [[0, 0], [0, 1], [1, 1]])
    # datasets written before mentioned_ids: the targets are what the text names
    np.testing.assert_array_equal(grounding_of({'target_ids': [10]}, 'nav', VIEW),
                                  [[1, 1], [0, 0], [0, 0]])
    # an existence question about an absent object (or a refusal) says that nothing is meant
    assert grounding_of({'target_ids': [], 'mentioned_ids': []}, 'qa', VIEW).sum() == 0
    assert grounding_of({'kind': 'refusal', 'target_ids': []}, 'refusal', VIEW).sum() == 0
    # scene captions name every object: no marks
    assert grounding_of(sample, 'scene_caption', VIEW) is None


@pytest.mark.parametrize('answer, subject_mark', [('Yes', 1), ('No', 0)])
def test_relation_question_marks_its_subject_when_true(answer, subject_mark):
    view = {'index': {10: 0, 11: 1}}
    sample = {'kind': 'qa_relation', 'answer': answer, 'target_ids': [11, 10],
              'mentioned_ids': [10, 11]}
    np.testing.assert_array_equal(grounding_of(sample, 'qa', view),
                                  [[0, 1], [subject_mark, 1]])


def test_support_question_marks_the_support():
    view = {'index': {10: 0, 11: 1}}
    sample = {'kind': 'qa_support', 'answer': 'The brown table', 'target_ids': [11, 10],
              'mentioned_ids': [10, 11]}
    np.testing.assert_array_equal(grounding_of(sample, 'qa', view), [[1, 1], [0, 1]])


@pytest.mark.parametrize('kind, target_ids, answer, expected', [
    ('nav', [7], '', [7]),
    ('pick_place', [7, 3], '', [7, 3]),
    ('qa_size', [5], 'The red mug', [5]),
    ('qa_relation', [4, 9], 'Yes', [4]),
    ('qa_relation', [4, 9], 'no', []),
    ('qa_support', [4, 9], 'The table', [9]),
])
def test_answer_object_ids(kind, target_ids, answer, expected):
    assert answer_object_ids(kind, target_ids, answer) == expected


SITUATION = {'x': 0.0, 'y': 0.0, 'yaw': 0.0}


@pytest.mark.parametrize('sample, family, expected', [
    ({'answer': 'A red mug on the table.'}, 'object_caption', 'A red mug on the table.'),
    ({'answer': 'Yes'}, 'qa', 'Yes'),
    ({'target_ids': [12]}, 'refer', '<obj_2>'),
    ({'target_ids': [11], 'situation': SITUATION, 'actions': []}, 'nav', '<nav_goal> <obj_1>'),
    ({'target_ids': [12, 10], 'situation': SITUATION, 'actions': []}, 'pick_place',
     '<pick_place> <obj_2> <obj_0>'),
    ({'target_ids': [11, 10], 'answer': 'First go to the mug.', 'situation': SITUATION,
      'actions': []}, 'plan', 'First go to the mug. <nav_goal> <obj_1> <pick_place> <obj_1> '
                              '<obj_0>'),
    ({'answer': "I don't see a purple mug."}, 'refusal', "<refuse> I don't see a purple mug."),
])
def test_targets_per_family(sample, family, expected):
    assert target_answer(sample, family, VIEW, GroundedTokenizer()) == expected


@pytest.mark.parametrize('sample, family, intent', [
    ({}, 'nav', 'motion'), ({}, 'plan', 'motion'), ({}, 'qa', 'question'),
    ({}, 'refer', 'question'), ({}, 'scene_caption', 'description'),
    ({'base_kind': 'pick_place'}, 'refusal', 'motion'),
    ({'base_kind': 'qa_color'}, 'refusal', 'question'),
])
def test_intent_of(sample, family, intent):
    assert INTENTS[intent_of(sample, family)] == intent


def test_token_f1_and_repeated_phrases():
    assert token_f1('A red mug on the table.', 'a red mug on the table') == 1.0
    assert token_f1('red mug', 'blue box') == 0.0
    assert 0.0 < token_f1('red mug on floor', 'red mug on the table') < 1.0
    assert repeated_phrases('a black sphere, a black sphere and a black bowl', 2) == \
        ['black sphere']
    assert repeated_phrases('A red mug on the brown table.') == []


def test_learning_rate_schedule():
    assert lr_factor(0, 10, 100) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100) == pytest.approx(1.0)
    assert lr_factor(10, 10, 100) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100) == pytest.approx(0.5)
    assert lr_factor(100, 10, 100) == pytest.approx(0.0, abs=1e-9)


def test_optimizer_state_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    save_optimizer(optimizer, tmp_path / 'opt')
    assert not list(tmp_path.glob('*.pt'))
    other = torch.optim.AdamW(model.parameters(), lr=0.5)
    load_optimizer(other, tmp_path / 'opt')
    assert other.param_groups[0]['lr'] == 0.1
    for key in ('exp_avg', 'exp_avg_sq'):
        assert torch.equal(other.state[model.weight][key], optimizer.state[model.weight][key])


def stage(**overrides):
    return StageConfig(**{'name': 'stage2', 'steps': 4, 'batch_size': 2, 'lr': 1e-2,
                          'warmup': 1, 'llm': 'lora', 'log_every': 1, 'eval_every': 100,
                          'checkpoint_every': 2, **overrides})


def test_a_stage_resumes_where_it_stopped(tmp_path):
    scene = make_scene(4)

    def fresh():
        policy = make_policy()
        policy.set_llm_mode('lora')
        examples = [make_example(policy, scene, '<nav_goal> <obj_2>'),
                    make_example(policy, scene, 'A red mug.', 'Describe the mug.')]
        return policy, examples

    policy, examples = fresh()
    whole = run_stage(policy, examples, [], stage(), tmp_path / 'once', lambda line: None,
                      progress=False)
    # the same stage, stopped after step 2 (its checkpoint), then run again from scratch
    policy, examples = fresh()
    run_stage(policy, examples, [], stage(steps=2, checkpoint_every=1), tmp_path / 'twice',
              lambda line: None, progress=False)
    checkpoint = json.loads((tmp_path / 'twice' / 'stage2' / 'checkpoint.json').read_text())
    assert checkpoint['step'] == 1                       # the last one before the end
    lines = []
    policy, examples = fresh()
    resumed = run_stage(policy, examples, [], stage(checkpoint_every=1), tmp_path / 'twice',
                        lines.append, progress=False)
    assert lines[0] == {'stage': 'stage2', 'event': 'resume', 'step': 1}
    assert [line['step'] for line in lines[1:]] == [2, 3, 4]
    for name, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name


def test_a_few_trainer_steps_teach_one_example_its_action(tmp_path):
    policy = make_policy(seed=2)
    policy.set_llm_mode('full')
    scene = make_scene(4, seed=9)
    example = make_example(policy, scene, '<pick_place> <obj_3> <obj_1>', 'Put it there.')
    example.family = 'pick_place'
    lines = []
    config = stage(name='stage1', steps=30, llm='full', batch_size=1, eval_every=30)
    policy = run_stage(policy, [example], [example], config, tmp_path, lines.append,
                       progress=False)
    assert [line for line in lines if 'val_loss' in line][-1]['val_exact_pick_place'] == 1.0
    assert act(policy.eval(), scene, 'Put it there.').tokens == \
        ['<pick_place>', '<obj_3>', '<obj_1>']


def test_stage_modes():
    tiny, pretrained = make_policy(), make_policy()
    pretrained.config.llm = LLMConfig(source='smollm2-135m')   # only the config is read
    assert stage_mode(StageConfig(name='stage1'), tiny) == 'full'
    assert stage_mode(StageConfig(name='stage2'), tiny) == 'lora'
    assert stage_mode(StageConfig(name='stage1'), pretrained) == 'lora'
    assert stage_mode(StageConfig(name='stage1', llm='frozen'), tiny) == 'frozen'
    config = TrainConfig.from_dict({})
    assert config.stage1.llm == 'auto' and config.stage2.llm == 'lora'


@pytest.mark.parametrize('data, match', [
    ({'stage1': {'steps': 0}}, 'steps'),
    ({'stage2': {'llm': 'half'}}, 'llm'),
    ({'stage2': {'loss_weighting': 'word'}}, 'loss_weighting'),
    ({'stage1': {'accumulation': 0}}, 'accumulation'),
    ({'policy': {'action_mode': 'words'}}, 'action_mode'),
    ({'policy': {'scene': {'width': 30, 'heads': 4}}}, 'width'),
    ({'policy': {'scene': {'location': 'fourier'}}}, 'location'),
    ({'policy': {'scene': {'grounding_loss': -0.5}}}, 'grounding_loss'),
    ({'policy': {'scene': {'named_geometry': True, 'grounding_loss': 0.0}}},
     'grounding_loss > 0'),
    ({'policy': {'scene': {'named_geometry': False, 'subject_head': True}}},
     'subject_head needs'),
    ({'policy': {'scene': {'pairwise_geometry': False}}}, 'pair_values needs'),
    ({'policy': {'llm': {'dtype': 'int4'}}}, 'dtype'),
    ({'policy': {'llm': {'lora_r': 0}}}, 'lora_r'),
    ({'policy': {'width': 32}}, 'no fields'),                   # the old flat keys
    ({'policy': {'scene': {'spatial_layers': 2}}}, 'no fields'),
    ({'data': {'refer_phrasings': ['no slot']}}, 'refer_phrasings'),
    ({'data': {'observed_situations': 5}}, 'observed_situations'),
    ({'data': {'observed_fraction': 1.5}}, 'observed_fraction'),
    ({'data': {'observed_views': 0}}, 'observed_views'),
    ({'classifier': {'steps': 0}}, 'steps'),
    ({'stages': {}}, 'unknown'),
    ({'stage1': {'lr_max': 1}}, 'unknown keys in stage1'),
])
def test_config_names_bad_values(data, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict(data)


@pytest.fixture(scope='module')
def shipped_config():
    return TrainConfig.load(ROOT / 'config' / 'train_default.yaml')


#: what each variant must change (dotted path -> value)
CHANGES = {'no_stage1': {'skip_stage1': True},
           'no_pairwise': {'policy.scene.pairwise_geometry': False,
                           'policy.scene.pair_values': False},
           'no_pair_values': {'policy.scene.pair_values': False},
           'no_grounding_loss': {'policy.scene.grounding_loss': 0.0,
                                 'policy.scene.named_geometry': False},
           'no_named_geometry': {'policy.scene.named_geometry': False,
                                 'policy.scene.subject_head': False},
           'bins': {'policy.action_mode': 'bins'}, 'rvq': {'policy.action_mode': 'rvq'},
           'default': {}}


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_every_ablation_variant_of_the_shipped_configuration_is_valid(shipped_config, variant):
    changed = variant_config(shipped_config, VARIANTS[variant])  # the checks run on the copy
    for path, value in CHANGES[variant].items():
        node = changed
        for part in path.split('.'):
            node = getattr(node, part)
        assert node == value, path
    # nothing else changed
    assert without(changed, VARIANTS[variant]) == without(shipped_config, VARIANTS[variant])


def without(config, paths) -> dict:
    """Return ``config`` as a dict without the values at dotted ``paths``."""
    data = config.to_dict()
    for path in paths:
        *parents, last = path.split('.')
        node = data
        for part in parents:
            node = node[part]
        del node[last]
    return data


def test_a_finished_variant_is_read_back_and_a_changed_one_is_not(shipped_config, tmp_path):
    config = variant_config(shipped_config, VARIANTS['no_pair_values'])
    (tmp_path / 'model').mkdir()
    (tmp_path / 'eval').mkdir()
    (tmp_path / 'model' / 'config.json').write_text(json.dumps(
        {'format': 'leo_ros.policy/2', 'training': config.to_dict()}))
    metrics = {'nav_success': 0.9}
    (tmp_path / 'eval' / 'eval.json').write_text(json.dumps(
        {'config': {'episodes': 5}, 'metrics': metrics}))
    assert finished_metrics(tmp_path, config, 5) == metrics
    assert finished_metrics(tmp_path, config, 6) is None
    assert finished_metrics(tmp_path, shipped_config, 5) is None
    assert finished_metrics(tmp_path / 'other', config, 5) is None


def test_out_of_reach_pick_place_starts_with_an_approach():
    # Plan tasks start the robot away from the objects; a bare pick-and-place naming the right
    # objects must drive there first, then succeed by the world's own check.
    from leo_ros.data.engine import TaskSampler
    from leo_ros.sim.world import World
    from leo_ros.train.evaluate import execute, reachable_free
    sampler, tokenizer = TaskSampler(), GroundedTokenizer()
    trials, approached, successes = 0, 0, 0
    for seed in (2000002, 2000005, 2000009, 2000011):
        world = World(seed)
        for episode in range(2):
            world.reset(seed)
            try:
                task = sampler.sample(world, 'plan', np.random.default_rng([seed, episode]))
            except ValueError:
                continue
            world.set_robot_pose(*task.situation)
            tokens = world.scene_tokens(64)
            index = {int(i): k for k, i in enumerate(tokens.ids)}
            rows = [[index[i] for i in task.target_ids[:2]]]
            try:
                actions = decode_grounded(tokenizer, ['pick_place'], rows, tokens,
                                          world.robot_pose, reachable_free(world))
            except ValueError:
                actions = []
            trials += 1
            approached += [a.kind for a in actions] == ['nav_goal', 'pick_place']
            if actions:
                execute(world, actions, 90.0)
            successes += bool(world.task_success(task))
    assert trials >= 5 and approached >= 3
    assert successes / trials >= 0.7


def test_an_encoder_started_policy_copies_matching_weights(tmp_path):
    from leo_ros.train.pipeline import initialise_from
    source = make_policy(seed=3)
    save_policy(source, tmp_path)
    target = make_policy(seed=4)
    copied = initialise_from(target, tmp_path)
    assert copied['copied'] > 0
    assert torch.equal(target.scene.object_in[0].weight, source.scene.object_in[0].weight)
    # the LM is not copied: its own weights stay
    assert not torch.equal(target.llm.get_input_embeddings().weight,
                           source.llm.get_input_embeddings().weight)
