"""The data engine: samples checked against independent geometry, refinement, shards, splits."""

from collections import Counter
import json
import math

from leo_ros.actions.types import action_from_dict, NavGoal, NavStep, PickPlace
from leo_ros.data.engine import DataEngine, EngineConfig, QA_KINDS, TaskSampler
from leo_ros.data.shards import (load_scene, read_samples, split_of_seed, split_seeds,
                                 write_split)
from leo_ros.data.templates import Templates
from leo_ros.sim.graph import Reference, RELATIONS
from leo_ros.sim.scene import make_object
from leo_ros.sim.world import World
from leo_ros.tools.data import main as leo_data
import numpy as np
import pytest

FIELDS = {'id', 'family', 'kind', 'scene_seed', 'situation', 'situation_index', 'instruction',
          'answer', 'actions', 'target_ids', 'mentioned_ids', 'template'}


@pytest.fixture(scope='module')
def results():
    engine = DataEngine(EngineConfig(qa=20, nav=4, pick_place=6, plan=3))
    return engine, [engine.scene(seed) for seed in range(6)]


def _samples(results, kind=None):
    return [s for r in results[1] for s in r.samples if kind is None or s['kind'] == kind]


def test_every_family_appears_with_all_fields(results):
    samples = _samples(results)
    families = Counter(s['family'] for s in samples)
    assert set(families) == {'object_caption', 'scene_caption', 'qa', 'nav', 'pick_place',
                             'plan'}, families
    for sample in samples:
        assert FIELDS <= set(sample), sample
        json.dumps(sample)  # JSON-serialisable
        for action in sample['actions']:
            action_from_dict(action)


def test_deterministic_per_seed():
    engine = DataEngine()
    assert engine.scene(4).samples == engine.scene(4).samples


def test_counts_colours_and_existence_match_the_scene(results):
    checked = 0
    for sample in _samples(results):
        scene = World(sample['scene_seed']).scene
        objects = list(scene.objects.values())
        if sample['kind'] == 'qa_count':
            plural = sample['instruction'].split('many ')[-1].split(' ')[0] \
                if 'many' in sample['instruction'] else sample['instruction'].split()[-1]
            plural = plural.strip('.?')
            category = next(c for c in {o.category for o in objects}
                            if plural in (c + 's', c + 'es', 'shelves' if c == 'shelf' else ''))
            assert int(sample['answer']) == sum(o.category == category for o in objects)
            checked += 1
        elif sample['kind'] == 'qa_color':
            assert sample['answer'].lower() == scene.objects[sample['target_ids'][0]].color
            checked += 1
        elif sample['kind'] == 'qa_existence':
            words = sample['instruction'].rstrip('?').split()
            color, category = words[-5:-3] if words[-1] == 'room' else words[-2:]
            present = any(o.color == color and o.category == category for o in objects)
            assert sample['answer'].lower() == ('yes' if present else 'no'), sample
            checked += 1
    assert checked >= 10


def _names(category):
    return {category, category + 's', category + 'es', 'shelves' if category == 'shelf' else ''}


def test_mentioned_objects_are_the_ones_the_text_names(results):
    """Targets, referenced objects and anchors; each is named in the instruction or answer."""
    anchored = 0
    for sample in _samples(results):
        scene = World(sample['scene_seed']).scene
        mentioned = sample['mentioned_ids']
        assert set(sample['target_ids']) <= set(mentioned), sample
        words = set((sample['instruction'] + ' ' + sample['answer']).lower()
                    .replace('.', ' ').replace('?', ' ').replace(',', ' ').split())
        # scene questions name what they count or compare generically ("the tallest object")
        generic = {'object', 'objects', 'things', 'items'} & words
        for object_id in mentioned:
            if object_id in scene.objects and not generic:
                assert _names(scene.objects[object_id].category) & words, (object_id, sample)
        if sample['kind'] == 'qa_size':
            assert len(mentioned) == 2 and len(sample['target_ids']) == 1, sample
        if sample['family'] == 'nav' and any(f' {r} ' in sample['instruction']
                                             for r in RELATIONS):
            assert len(mentioned) == 2, sample       # the target and its anchor
            anchored += 1
    assert anchored >= 1


def test_directions_in_answers_match_coordinates(results):
    checked = 0
    for sample in _samples(results, 'qa_relation'):
        a, b = sample['target_ids']
        question = sample['instruction']
        relation = next((r for r in ('left of', 'right of', 'in front of', 'behind')
                         if f' {r} ' in question), None)
        if relation is None:
            continue
        scene = World(sample['scene_seed']).scene
        s = sample['situation']
        heading = np.array([math.cos(s['yaw']), math.sin(s['yaw'])])
        delta = scene.objects[a].center[:2] - scene.objects[b].center[:2]
        cross = heading[0] * delta[1] - heading[1] * delta[0]
        along = heading @ delta
        truth = {'left of': cross > 0, 'right of': cross < 0, 'behind': along > 0,
                 'in front of': along < 0}[relation]
        assert sample['answer'].lower() == ('yes' if truth else 'no'), sample
        checked += 1
    assert checked >= 3


def test_question_kind_weights_shift_what_is_asked():
    def proposed(weights):
        engine = DataEngine(EngineConfig(object_captions=0, scene_captions=0, qa=40, nav=0,
                                         pick_place=0, plan=0, qa_kind_weights=weights))
        counts = Counter()
        for seed in range(3):
            counts.update(engine.scene(seed).proposed)
        return counts
    uniform = proposed(None)
    geometry = proposed({'qa_relation': 6, 'qa_size': 6, 'qa_count': 0})
    assert geometry['qa_count'] == 0 < uniform['qa_count']
    assert geometry['qa_relation'] > 1.5 * uniform['qa_relation']
    assert geometry['qa_size'] > 1.5 * uniform['qa_size']


@pytest.mark.parametrize('weights, match', [({'qa_colour': 2}, 'unknown keys'),
                                            ({'qa_size': -1}, '>= 0'),
                                            (dict.fromkeys(QA_KINDS, 0), 'no kind')])
def test_question_kind_weights_name_bad_values(weights, match):
    with pytest.raises(ValueError, match=match):
        EngineConfig(qa_kind_weights=weights)


def _forms(weights, draws=200):
    engine = DataEngine(EngineConfig(reference_form_weights=weights))
    world = World(3)
    graph = world.graph
    rng = np.random.default_rng(0)
    targets = sorted(world.scene.objects)
    counts = Counter()
    for _ in range(draws):
        reference = engine.propose_reference(graph, targets[int(rng.integers(len(targets)))],
                                             rng)
        counts['superlative' if reference.superlative else
               'relation' if reference.relation else
               'color' if reference.color else 'category'] += 1
    return counts


def test_reference_form_weights_shift_how_objects_are_named():
    default = _forms(None)
    assert all(default[form] > 0 for form in ('category', 'color', 'relation', 'superlative'))
    only_superlatives = _forms({'superlative': 1})
    assert only_superlatives == Counter(superlative=200)
    plain = _forms({'category': 1})
    assert plain == Counter(category=200)
    relational = _forms({'relation': 3, 'category': 1})
    # a relation is dropped when the proposer finds none for the target (then it names the
    # category, perhaps with colour)
    assert relational['relation'] > 2 * default['relation']
    assert relational['superlative'] == 0


@pytest.mark.parametrize('weights, match', [({'colour': 1}, 'unknown keys'),
                                            ({'relation': -1}, '>= 0'),
                                            ({'relation': 0}, 'no form')])
def test_reference_form_weights_name_bad_values(weights, match):
    with pytest.raises(ValueError, match=match):
        EngineConfig(reference_form_weights=weights)


def test_navigation_samples_reach_the_target(results):
    samples = _samples(results, 'nav')
    assert len(samples) >= 5
    for sample in samples:
        world = World(sample['scene_seed'])
        target = world.scene.objects[sample['target_ids'][0]]
        actions = [action_from_dict(a) for a in sample['actions']]
        goal, steps = actions[0], actions[1:]
        assert isinstance(goal, NavGoal) and all(isinstance(a, NavStep) for a in steps)
        # The goal pose: within 0.5 m of the target's footprint (computed here) and facing it.
        c, s = math.cos(target.yaw), math.sin(target.yaw)
        dx, dy = goal.x - target.x, goal.y - target.y
        local = np.abs([c * dx + s * dy, -s * dx + c * dy]) - np.array(target.size[:2]) / 2
        gap = math.hypot(*np.maximum(local, 0)) - world.config.robot.radius
        bearing = math.atan2(target.y - goal.y, target.x - goal.x)
        assert gap <= 0.5 + 1e-6
        assert abs((bearing - goal.yaw + math.pi) % (2 * math.pi) - math.pi) < 1e-6
        # The steps, executed from the situation, end next to the target.
        situation = sample['situation']
        world.set_robot_pose(situation['x'], situation['y'], situation['yaw'])
        for step in steps:
            assert world.apply(step).ok
        assert world.nav_success(target.id)


def test_manipulation_samples_put_the_object_on_the_destination(results):
    samples = _samples(results, 'pick_place') + _samples(results, 'plan')
    assert len(samples) >= 3
    for sample in samples:
        world = World(sample['scene_seed'])
        obj_id, dest_id = sample['target_ids']
        action = [action_from_dict(a) for a in sample['actions']][-1]
        assert isinstance(action, PickPlace)
        if sample['kind'] == 'plan':
            goal = action_from_dict(sample['actions'][0])
            world.set_robot_pose(goal.x, goal.y, goal.yaw)
        else:
            s = sample['situation']
            world.set_robot_pose(s['x'], s['y'], s['yaw'])
        assert world.apply(action).ok
        obj, dest = world.scene.objects[obj_id], world.scene.objects[dest_id]
        assert obj.z == pytest.approx(dest.top)
        assert dest.contains_xy((obj.x, obj.y))


def test_refinement_drops_ambiguous_references_and_wrong_answers():
    engine = DataEngine()
    world = World(0)
    world.scene.objects = {
        1: make_object(1, 'table', 'brown', 2.0, 2.0, 0.0, 0.0, (1.2, 0.8, 0.75)),
        2: make_object(2, 'mug', 'red', 1.8, 2.0, 0.75, 0.0, (0.1, 0.08, 0.1), 1),
        3: make_object(3, 'mug', 'red', 2.3, 2.0, 0.75, 0.0, (0.1, 0.08, 0.1), 1),
        4: make_object(4, 'mug', 'blue', 2.3, 2.3, 0.75, 0.0, (0.1, 0.08, 0.1), 1),
    }
    ambiguous = {'refs': [(Reference('mug', 'red'), 2)], 'claim': ('color', 2, 'red')}
    assert engine.refine(world, ambiguous) == 'ambiguous_reference'
    unique = {'refs': [(Reference('mug', 'blue'), 4)], 'claim': ('color', 4, 'blue')}
    assert engine.refine(world, unique) == ''
    wrong = {'refs': [(Reference('mug', 'blue'), 4)], 'claim': ('color', 4, 'green')}
    assert engine.refine(world, wrong) == 'wrong_answer'
    assert engine.refine(world, {'claim': ('count', 'mug', 2)}) == 'wrong_answer'
    assert engine.refine(world, {'claim': ('count', 'mug', 3)}) == ''


def test_drops_are_counted(results):
    proposed = sum((r.proposed for r in results[1]), Counter())
    dropped = sum((r.dropped for r in results[1]), Counter())
    kept = len(_samples(results))
    assert sum(proposed.values()) == kept + sum(dropped.values())
    assert dropped['ambiguous_reference'] > 0


def test_templates_from_a_user_file(tmp_path):
    path = tmp_path / 'mine.yaml'
    path.write_text('kinds:\n  nav:\n    instructions: ["Drive up to {target}, please."]\n'
                    '    answers: ["On my way to {target}."]\n')
    templates = Templates.load(path)
    engine = DataEngine(EngineConfig(object_captions=0, scene_captions=0, qa=0, pick_place=0,
                                     plan=0, nav=6), templates)
    samples = [s for seed in range(3) for s in engine.scene(seed).samples]
    assert samples and all(s['instruction'].startswith('Drive up to the ') for s in samples)
    bad = tmp_path / 'bad.yaml'
    bad.write_text('kinds:\n  nav:\n    instructions: ["Go to {place}"]\n    answers: ["ok"]\n')
    with pytest.raises(ValueError, match='place'):
        Templates.load(bad)
    with pytest.raises(ValueError, match='dance'):
        Templates({'kinds': {'dance': {'instructions': ['x'], 'answers': ['y']}}})


def test_task_sampler_gives_checkable_tasks():
    world = World(5)
    sampler = TaskSampler()
    rng = np.random.default_rng(0)
    task = sampler.sample(world, 'nav', rng)
    assert task.family == 'nav' and task.instruction and not world.task_success(task) \
        or world.nav_success(task.target_ids[0])
    goal = task.actions[0]
    world.set_robot_pose(goal.x, goal.y, goal.yaw)
    assert world.task_success(task)
    qa = sampler.sample(world, 'qa', rng)
    assert world.task_success(qa, qa.answer) and not world.task_success(qa, 'purple elephant')
    assert task.kind == 'nav' and qa.kind in QA_KINDS
    with pytest.raises(ValueError, match='dance'):
        sampler.sample(world, 'dance', rng)


def test_splits_are_disjoint():
    train, val, test = (set(split_seeds(s, 50)) for s in ('train', 'val', 'test'))
    assert not train & val and not train & test and not val & test
    assert {split_of_seed(s) for s in val} == {'val'}
    with pytest.raises(ValueError, match='split'):
        split_seeds('dev', 3)


def test_write_and_read_a_split(tmp_path):
    engine = DataEngine(EngineConfig(points_per_object=64, image_size=(32, 24)))
    manifest = write_split(tmp_path, 'val', 2, engine=engine, shard_size=10, progress=False)
    samples = list(read_samples(tmp_path, 'val'))
    assert len(samples) == manifest['samples'] and len(manifest['shards']) >= 2
    assert {s['scene_seed'] for s in samples} == set(split_seeds('val', 2))
    assert manifest['candidates'] == manifest['samples'] + sum(manifest['dropped'].values())
    scene = load_scene(tmp_path, 'val', split_seeds('val', 1)[0])
    assert scene['tokens'].points.shape[1:] == (64, 6)
    situations = max(s['situation_index'] for s in samples
                     if s['scene_seed'] == split_seeds('val', 1)[0]) + 1
    assert scene['ego_images'].shape[1:] == (24, 32, 3)
    assert len(scene['ego_images']) == len(scene['situations']) >= situations
    assert len(scene['scene']['objects']) == len(scene['tokens'])


def test_leo_data_cli(tmp_path, capsys):
    code = leo_data(['generate', '--out', str(tmp_path), '--train', '1', '--val', '1',
                     '--test', '0', '--points', '32', '--image-size', '0x0', '--quiet'])
    assert code == 0
    out = capsys.readouterr().out
    assert 'train: scenes=1' in out and 'val: scenes=1' in out
    assert leo_data(['inspect', str(tmp_path), '--split', 'train', '--samples', '2']) == 0
    png = tmp_path / 'scene.png'
    assert leo_data(['topdown', '--seed', '0', '--out', str(png), '--dataset',
                     str(tmp_path)]) == 0
    assert png.stat().st_size > 10_000
