"""Refusals and scene questions of the data engine, checked against the scene graph directly."""

from pathlib import Path
import re

from leo_ros.data.engine import DataEngine, EngineConfig, QA_KINDS, TaskSampler
from leo_ros.data.refusals import (EMPTY_ANSWER, HELDOUT_NOUNS, REFUSAL_FORMS, TRAIN_NOUNS,
                                   with_article)
from leo_ros.data.scene_questions import SCENE_QUESTION_KINDS, TALLEST_RATIO
from leo_ros.data.templates import split_template, Templates
from leo_ros.sim.graph import RELATIONS
from leo_ros.sim.scene import CATEGORIES, COLORS, SUPPORT_CATEGORIES
from leo_ros.sim.world import World
from leo_ros.train.lexicon import training_words
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENES = 24


@pytest.fixture(scope='module')
def templates():
    return Templates.load()


@pytest.fixture(scope='module')
def results(templates):
    """Scenes that yield refusals and scene questions only (other question kinds weigh 0)."""
    weights = {k: 0 for k in QA_KINDS if k not in SCENE_QUESTION_KINDS}
    engine = DataEngine(EngineConfig(
        situations=2, object_captions=0, scene_captions=0, qa=16, nav=0, pick_place=0, plan=0,
        refusals=16, points_per_object=16, image_size=(0, 0), qa_kind_weights=weights),
        templates)
    return [engine.scene(seed) for seed in range(SCENES)]


def samples_of(results, kinds):
    """Yield (world placed at the sample's situation, graph, sample) for sample kinds."""
    for result in results:
        for sample in result.samples:
            if sample['kind'] in kinds:
                situation = sample['situation']
                result.world.set_robot_pose(situation['x'], situation['y'], situation['yaw'])
                yield result.world, result.world.graph, sample


def slots_of(sample, templates, kind=None) -> dict:
    """Return the slot values of a sample's instruction, read back through its template."""
    template_kind, number, _ = sample['template'].split('/')
    phrasing = templates.kinds[kind or template_kind]['instructions'][int(number)]
    parts = split_template(sample['instruction'], phrasing)
    assert parts is not None, (sample['instruction'], phrasing)
    names = re.findall(r'\{([a-z_]+)\}', phrasing)
    return dict(zip(names, parts[1::2]))


def absent_phrase(sample) -> str:
    """Return what a refusal says is not there: "I don't see a purple mug." -> purple mug."""
    found = re.fullmatch(r"I don't see an? (.+)\.", sample['answer'])
    assert found, sample['answer']
    return found.group(1)


def objects(graph):
    return [graph.scene.object(i) for i in graph.ids]


def test_every_refusal_form_is_made(results):
    forms = {s['form'] for _, _, s in samples_of(results, ('refusal',))}
    assert forms == set(REFUSAL_FORMS)


def test_refusals_name_what_is_not_there(results):
    checked = 0
    for _, graph, sample in samples_of(results, ('refusal',)):
        assert sample['target_ids'] == [] and sample['actions'] == []
        assert sample['family'] == 'refusal'
        form = sample['form']
        if form == 'empty':
            assert sample['answer'] == EMPTY_ANSWER
            continue
        phrase = absent_phrase(sample)
        assert f'the {phrase}' in sample['instruction']
        assert sample['answer'] == f"I don't see {with_article(phrase)}."
        words = phrase.split(' ')
        if form == 'noun':
            assert phrase in TRAIN_NOUNS and phrase not in CATEGORIES
        elif form == 'category':
            assert phrase in CATEGORIES
            assert all(o.category != phrase for o in objects(graph))
        elif form == 'color':
            color, category = words
            assert color in COLORS and category in CATEGORIES
            assert any(o.category == category for o in objects(graph))    # a lookalike is there
            assert not any(o.category == category and o.color == color for o in objects(graph))
        else:     # 'mug on the table': mugs and one table exist, no mug stands on it
            category, relation, _, anchor = words
            assert relation == 'on' and anchor in SUPPORT_CATEGORIES
            anchors = [o.id for o in objects(graph) if o.category == anchor]
            assert len(anchors) == 1 and any(o.category == category for o in objects(graph))
            assert not any(o.category == category and graph.support(o.id) == anchors[0]
                           for o in objects(graph))
        checked += 1
    assert checked >= 40


def test_held_out_nouns_never_appear_in_training():
    assert not set(HELDOUT_NOUNS) & set(TRAIN_NOUNS)
    held_out = {w for noun in HELDOUT_NOUNS for w in noun.split(' ')}
    trained = training_words([ROOT / 'config' / 'templates_train.yaml',
                              ROOT / 'leo_ros' / 'data' / 'templates' / 'default.yaml'])
    assert {w for noun in TRAIN_NOUNS for w in noun.split(' ')} <= trained
    assert sorted(held_out & trained) == []
    assert not held_out & set(CATEGORIES)


def test_training_refusals_never_name_a_held_out_noun(results):
    held_out = {w for noun in HELDOUT_NOUNS for w in noun.split(' ')}
    for _, _, sample in samples_of(results, ('refusal',)):
        words = set(re.findall(r'[a-z]+', (sample['instruction'] + sample['answer']).lower()))
        assert not words & held_out, sample['instruction']


def test_evaluation_refusals_name_held_out_nouns_only():
    sampler, named = TaskSampler(), []
    for seed in (2000002, 2000005):
        world = World(seed)
        for episode in range(25):
            task = sampler.sample(world, 'refusal', np.random.default_rng([seed, episode]))
            assert task.family == 'refusal' and not task.actions
            if task.answer != EMPTY_ANSWER:
                named.append(absent_phrase({'answer': task.answer}))
    assert not set(named) & set(TRAIN_NOUNS)
    assert set(named) & set(HELDOUT_NOUNS)


def test_scene_questions_of_every_kind_are_made(results):
    kinds = {s['kind'] for _, _, s in samples_of(results, SCENE_QUESTION_KINDS)}
    assert kinds == set(SCENE_QUESTION_KINDS)


def test_counts_on_a_support_are_right(results):
    checked = 0
    for _, graph, sample in samples_of(results, ('qa_count_on',)):
        support, = set(sample['mentioned_ids']) - set(sample['target_ids'])
        assert graph.scene.object(support).category in SUPPORT_CATEGORIES
        standing = sorted(o.id for o in objects(graph)
                          if o.id != support and graph.support(o.id) == support)
        assert sorted(sample['target_ids']) == standing
        assert sample['answer'].rstrip('.') == str(len(standing))
        checked += 1
    assert checked >= 5


def test_the_tallest_object_is_right(results, templates):
    checked = 0
    for _, graph, sample in samples_of(results, ('qa_tallest',)):
        winner, = sample['target_ids']
        target = slots_of(sample, templates)['target']
        if ' on ' in target:
            support, = set(sample['mentioned_ids']) - {winner}
            candidates = [o for o in objects(graph) if graph.support(o.id) == support]
        else:
            candidates = objects(graph)
        heights = {o.id: o.size[2] for o in candidates}
        assert winner in heights
        assert all(heights[winner] >= TALLEST_RATIO * h for i, h in heights.items()
                   if i != winner)
        assert sample['answer'].rstrip('.').lower() == graph.scene.object(winner).color
        checked += 1
    assert checked >= 5


def test_existence_of_a_category_is_right(results, templates):
    answers = []
    for _, graph, sample in samples_of(results, ('qa_exists_category',)):
        category = slots_of(sample, templates)['category']
        present = any(o.category == category for o in objects(graph))
        answers.append(sample['answer'].rstrip('.').lower())
        assert answers[-1] == ('yes' if present else 'no')
        assert sorted(sample['target_ids']) == sorted(o.id for o in objects(graph)
                                                      if o.category == category)
    assert {'yes', 'no'} <= set(answers)


def test_what_stands_in_a_relation_is_right(results):
    checked = 0
    for _, graph, sample in samples_of(results, ('qa_what_relation',)):
        target, = sample['target_ids']
        anchor, = set(sample['mentioned_ids']) - {target}
        # 'What is left of the mug?': the relation follows 'is' (template splits are ambiguous)
        relation, = [r for r in RELATIONS if re.search(rf'\bis {r} ', sample['instruction'])]
        holders = [i for i in graph.ids if i != anchor and graph.holds(relation, i, anchor)]
        assert holders == [target]
        assert sample['answer'].rstrip('.').lower() == graph.scene.object(target).category
        checked += 1
    assert checked >= 2
