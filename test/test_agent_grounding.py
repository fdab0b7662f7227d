"""
The grounding gate, the map the safety gate reads, and the bounded caches (pure Python).

The grounding gate must refuse motion toward objects that are not in the scene and must not
refuse the data engine's own navigation, pick-and-place and plan instructions in the scenes
they were drawn in.
"""

import math

from leo_ros.actions.types import NavGoal
from leo_ros.agent.grounding import (action_object_ids, color_matches, GroundingConfig,
                                     GroundingGate, named_objects)
from leo_ros.agent.mapgrid import MapGrid
from leo_ros.agent.safety import SafetyConfig, SafetyGate
from leo_ros.scene_tokens import SceneTokens
import numpy as np
import pytest


def scene(labels, colors, confidences=None, ids=None):
    clouds = [np.zeros((4, 3)) + k for k in range(len(labels))]
    tokens = SceneTokens.from_object_clouds(
        clouds, [np.tile(np.asarray(c, np.float32), (4, 1)) for c in colors], ids=ids,
        labels=list(labels), points_per_object=4)
    tokens.confidences = np.asarray(confidences or [1.0] * len(labels), np.float32)
    return tokens


RED, BLUE, GREY = (0.85, 0.12, 0.12), (0.15, 0.3, 0.9), (0.5, 0.5, 0.52)


@pytest.mark.parametrize('text,expected', [
    ('go to the red mug', [('red mug', 'mug', 'red')]),
    ('bring the bowl left of the red mug to the table',
     [('bowl', 'bowl', ''), ('red mug', 'mug', 'red'), ('table', 'table', '')]),
    ('go to the purple elephant', [('purple elephant', '', 'purple')]),
    ('put the mug on the floor', [('mug', 'mug', '')]),
    ('turn left', []), ('take me to the largest box', [('largest box', 'box', '')]),
    ('count the boxes', [('boxes', 'box', '')]),
])
def test_named_objects(text, expected):
    assert [(n.phrase, n.category, n.color) for n in named_objects(text)] == expected


@pytest.mark.parametrize('rgb,name,expected', [
    ((0.69, 0.34, 0.03), 'orange', True), ((0.69, 0.34, 0.03), 'blue', False),
    ((0.55, 0.55, 0.55), 'white', True), ((0.05, 0.05, 0.05), 'grey', False),
    ((0.05, 0.05, 0.05), 'black', True), ((0.36, 0.36, 0.38), 'grey', True),
    ((0.63, 0.63, 0.63), 'black', False), ((0.06, 0.06, 0.06), 'white', False),
    ((0.43, 0.43, 0.43), 'white', True), ((0.93, 0.93, 0.93), 'grey', False),
    ((0.05, 0.05, 0.05), 'red', False), ((0.1, 0.21, 0.62), 'blue', True),
    ((0.5, 0.1, 0.1), 'pink', False), ((math.nan, 0, 0), 'red', False),
    # shaded orange and brown (as the renderer gives them) are not taken for each other
    ((0.73, 0.36, 0.04), 'brown', False), ((0.37, 0.22, 0.11), 'orange', False),
    ((0.37, 0.22, 0.11), 'brown', True), ((0.56, 0.08, 0.08), 'orange', False),
])
def test_colours_are_compared_by_chroma_and_brightness(rgb, name, expected):
    assert color_matches(rgb, name) is expected


# Navigation goals to the red or blue mug, the purple elephant and the chair: in the next test.
@pytest.mark.parametrize('text,kind,refusal', [
    ('go to the pink mug', 'nav_goal', "I don't see a pink mug."),
    ('put the red mug on the grey table', 'pick_place', ''),
    ('go to the ', 'nav_goal', 'names no object'),
    ('turn left', 'nav_step', ''),
    ('drive forward to the elephant', 'nav_step', "I don't see an elephant."),
])
def test_instruction_check_against_the_scene(text, kind, refusal):
    gate = GroundingGate()
    result = gate.check_instruction(text, scene(['mug', 'table'], [RED, GREY]), kind)
    assert (refusal in result) if refusal else result == ''


@pytest.mark.parametrize('text,refuse,model', [
    ('go to the crimson cup', "I don't see a crimson cup.", ''),
    ('go to the purple elephant', "I don't see a purple elephant.", ''),
    ('go to the blue mug', "I don't see a blue mug.", "I don't see a blue mug."),
    ('go to the chair', "I don't see a chair.", "I don't see a chair."),
    ('go to the red mug', '', ''),
])
def test_unknown_words_are_refused_or_left_to_the_model(text, refuse, model):
    tokens = scene(['mug', 'table'], [RED, GREY])
    for mode, expected in (('refuse', refuse), ('model', model)):
        gate = GroundingGate(GroundingConfig(unknown_words=mode))
        assert gate.check_instruction(text, tokens, 'nav_goal') == expected, mode


@pytest.mark.parametrize('text,refusal', [
    ('What color is the green chair?', "I don't see a green chair."),
    ('Describe the blue mug.', "I don't see a blue mug."),
    ('What is the red mug standing on?', ''),
    ('Is there a green chair in the room?', ''), ('Can you spot a blue mug?', ''),
    ('How many chairs are there?', ''), ('What number of objects sit on the grey table?', ''),
    ('Describe the room.', ''), ('Give a short caption of the table.', ''),
    ('What is the colour of the grey table?', ''), ('Give a summary of the scene.', ''),
    ('What is the weather like?', ''),                    # the policy answers what it can
])
def test_text_answers_about_absent_objects_are_refused(text, refusal):
    class Answer:
        text, kind, actions, action = 'White', 'text', [], None
    gate = GroundingGate()
    tokens = scene(['mug', 'table'], [RED, GREY])
    assert gate.check_decision(text, Answer(), tokens) == refusal
    assert gate.check_answer(text, tokens) == refusal


def box_cloud(low, high, count=200, seed=0):
    return np.random.default_rng(seed).uniform(low, high, (count, 3)).astype(np.float32)


@pytest.mark.parametrize('text,refusal', [
    ('What color is the bowl on the table?', ''),
    ('Describe the mug on the table.', "I don't see a mug on the table."),
    ('Describe the red mug on the grey table.', "I don't see a red mug on the grey table."),
    ('Tidy up: the bowl on the table belongs on the shelf.', ''),
    ('Tidy up: the mug on the table belongs on the shelf.', "I don't see a mug on the table."),
    ('Move the mug on the table to the shelf.', "I don't see a mug on the table."),
    ('Put the red mug on the grey table.', ''),      # where to put it, not which mug
    ('Go to the blue bowl on the grey table.', ''),
])
def test_objects_named_on_a_support_must_rest_on_it(text, refusal):
    # a grey table (top at 0.75 m), a blue bowl on it, a red mug on the floor, a shelf
    clouds = [box_cloud((0, 0, 0), (1.2, 0.8, 0.75)), box_cloud((0.4, 0.3, 0.75), (0.6, 0.5, 0.8)),
              box_cloud((2.0, 2.0, 0.0), (2.1, 2.1, 0.1)), box_cloud((3, 0, 0), (3.4, 0.4, 1.5))]
    colors = [GREY, BLUE, RED, GREY]
    tokens = SceneTokens.from_object_clouds(
        clouds, [np.tile(np.asarray(c, np.float32), (200, 1)) for c in colors],
        labels=['table', 'bowl', 'mug', 'shelf'], points_per_object=16)
    tokens.confidences = np.ones(4, np.float32)
    assert GroundingGate().check_instruction(text, tokens, 'nav_goal') == refusal


def test_unknown_or_unsure_labels_never_cause_a_refusal():
    gate = GroundingGate(GroundingConfig(label_confidence=0.5))
    unsure = scene(['box', 'unknown'], [BLUE, BLUE], confidences=[0.2, 0.9])
    assert gate.check_instruction('go to the blue chair', unsure, 'nav_goal') == ''
    assert 'red chair' in gate.check_instruction('go to the red chair', unsure, 'nav_goal')


def test_action_objects_must_be_in_the_current_scene():
    decided = scene(['mug', 'table'], [RED, GREY], ids=[7, 9])

    class Decision:
        tokens = ['<pick_place>', '<obj_0>', '<obj_1>']
    assert action_object_ids(Decision(), decided) == [7, 9]
    gate = GroundingGate()
    assert gate.check_objects([7, 9], decided) == ''
    after_reset = scene(['mug'], [RED], ids=[12])
    assert 'object 7, 9' in gate.check_objects([7, 9], after_reset)
    assert 'object' in gate.check_objects([7], None)

    class Pointing:
        object_ids = [12]
        tokens = ['<nav_goal>', '<obj_5>']
    assert action_object_ids(Pointing(), decided) == [12]


def test_the_data_engines_motion_instructions_pass_in_their_own_scenes():
    from leo_ros.data.engine import TaskSampler
    from leo_ros.sim.world import World
    gate, sampler, checked = GroundingGate(), TaskSampler(), 0
    for seed in (900001, 900002, 900003):
        world = World(seed)
        tokens = world.scene_tokens(points_per_object=64)
        for family, kind in (('nav', 'nav_goal'), ('pick_place', 'pick_place'),
                             ('plan', 'pick_place')):
            for task_seed in range(6):
                task = sampler.sample(world, family, np.random.default_rng(task_seed))
                assert gate.check_instruction(task.instruction, tokens, kind) == '', \
                    (seed, task.instruction)
                checked += 1
    assert checked == 54


def test_map_grid_bounds_cells_and_nearest_free():
    occupancy = np.zeros((20, 30), np.int8)           # 1.5 m x 1 m at 5 cm
    occupancy[:, 10:12] = 100                         # a wall at x = 0.5..0.6
    occupancy[0, 0] = -1
    grid = MapGrid(0.05, (1.0, 2.0, 0.0), occupancy)
    assert grid.bounds() == pytest.approx((1.0, 2.5, 2.0, 3.0))
    assert grid.cell(1.01, 2.01) == (0, 0) and grid.cell(0.9, 2.5) is None
    assert not grid.is_free(1.01, 2.01) and grid.is_free(1.2, 2.5)
    assert not grid.is_free(1.55, 2.5)
    x, y = grid.nearest_free(1.56, 2.5, 0.5)
    assert grid.is_free(x, y) and x == pytest.approx(1.625)     # the wall's nearer side
    assert abs(y - 2.5) == pytest.approx(0.025)
    assert MapGrid(0.05, (0, 0, 0), np.full((4, 4), 100)).nearest_free(0.1, 0.1, 1.0) is None
    rotated = MapGrid(1.0, (0.0, 0.0, math.pi / 2), np.zeros((2, 3)))
    assert rotated.bounds() == pytest.approx((-2.0, 0.0, 0.0, 3.0))
    with pytest.raises(ValueError, match='resolution'):
        MapGrid(0.0, (0, 0, 0), occupancy)
    with pytest.raises(ValueError, match='3x2 cells has 5'):
        MapGrid.from_flat(0.1, (0, 0, 0), 3, 2, [0] * 5)


def test_the_gate_takes_bounds_and_occupancy_from_the_map():
    occupancy = np.zeros((130, 70), np.int8)           # 7 m x 13 m at 10 cm, like a big room
    occupancy[60:70, 30:40] = 100                      # a table at (3..4, 6..7)
    gate = SafetyGate(SafetyConfig())
    assert gate.check(NavGoal(6.0, 12.0, 0.0), 0.1).clamped   # no map: the 5 m parameters
    gate.set_map(MapGrid(0.1, (0.0, 0.0, 0.0), occupancy))
    inside = gate.check(NavGoal(6.0, 12.0, 0.0), 0.1)          # beyond the 5 m parameters
    assert inside.allowed and inside.action == NavGoal(6.0, 12.0, 0.0)
    moved = gate.check(NavGoal(3.52, 6.5, 0.3), 0.1)
    assert moved.allowed and moved.clamped and 'nearest free cell' in moved.reason
    assert moved.action.yaw == 0.3 and gate.map.is_free(moved.action.x, moved.action.y)
    outside = gate.check(NavGoal(9.0, 6.5, 0.0), 0.1)
    assert outside.allowed and outside.action.x == pytest.approx(6.95)
    refusing = SafetyGate(SafetyConfig(occupied_goal='refuse'), gate.map)
    refused = refusing.check(NavGoal(3.52, 6.5, 0.3), 0.1)
    assert not refused.allowed and 'occupied' in refused.reason
    walled = SafetyGate(SafetyConfig(max_goal_shift=0.1), gate.map)
    assert 'no free cell' in walled.check(NavGoal(3.5, 6.5, 0.0), 0.1).reason
    with pytest.raises(ValueError, match='occupied_goal'):
        SafetyConfig(occupied_goal='ignore')


def test_every_motion_template_wording_passes_when_its_objects_are_there():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from test_agent_intent import MOTION_KINDS, template_wordings
    tokens = scene(['mug', 'table', 'shelf', 'box'], [RED, GREY, GREY, BLUE])
    gate = GroundingGate()
    refused = [(kind, text, gate.check_instruction(text, tokens, 'pick_place'))
               for kind, text in template_wordings() if kind in MOTION_KINDS]
    assert len(refused) > 40
    assert not [r for r in refused if r[2]], [r for r in refused if r[2]]
