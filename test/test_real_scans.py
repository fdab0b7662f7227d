"""
Single scans and real-scan questions: leo_ros.real, leo-ask and leo-eval --real.

A ray-cast tabletop (known pose, known boxes) checks the pose estimate and the tokens; the 13
real mOSD scenes check the ground truth rules (shapes against a look at each scene); the
shipped model answers through ``ScanAgent`` and the ``leo-ask`` command.
"""

import math
from pathlib import Path
import subprocess
import sys

from conftest import MOSD_LEARN
from leo_ros.real.questions import (color_names, is_right, questions, real_objects,
                                    RealQuestion)
from leo_ros.real.scan import (agent_pose, load_scan, perceive, pose_from_plane,
                               pose_from_text, Scan, ScanError)
import numpy as np
import pypcd4
import pytest
from test_perception_segmentation import camera_pose

TABLE_HEIGHT = 0.75
#: (centre x, y in the table frame, size x, y, z, colour, mOSD label)
BOXES = [((0.25, -0.05), (0.10, 0.10, 0.20), (0.85, 0.10, 0.10), 20),
         ((0.25, 0.20), (0.10, 0.12, 0.08), (0.10, 0.20, 0.85), 30)]


def tabletop(eye=(-0.45, 0.0, 0.5), width=320, height=240, fov=60.0):
    """
    Ray-cast a table (z = 0) with two boxes; return xyz, rgb (camera frame), labels, pose.

    :return: (H, W, 3) points, (H, W, 3) colours, (H, W) mOSD labels, (4, 4) camera pose
    """
    pose = camera_pose(eye, (0.25, 0.05, 0.0))
    focal = width / 2 / math.tan(math.radians(fov) / 2)
    u, v = np.meshgrid(np.arange(width) - (width - 1) / 2, np.arange(height) - (height - 1) / 2)
    rays = np.stack([u / focal, v / focal, np.ones_like(u)], axis=-1)         # (H, W, 3)
    world = rays @ pose[:3, :3].T                                             # directions
    origin = pose[:3, 3]
    depth = np.where(world[..., 2] < 0, -origin[2] / np.minimum(world[..., 2], -1e-9), np.inf)
    depth = np.where(depth < 2.5, depth, np.inf)
    labels = np.where(np.isfinite(depth), 1, 0)
    rgb = np.broadcast_to(np.array([0.8, 0.7, 0.55]), rays.shape).copy()
    for (cx, cy), size, color, label in BOXES:
        low = np.array([cx - size[0] / 2, cy - size[1] / 2, 0.0])
        high = np.array([cx + size[0] / 2, cy + size[1] / 2, size[2]])
        with np.errstate(divide='ignore', invalid='ignore'):
            t1, t2 = (low - origin) / world, (high - origin) / world
        near = np.minimum(t1, t2).max(axis=-1)
        far = np.maximum(t1, t2).min(axis=-1)
        hit = (near <= far) & (near > 0) & (near < depth)
        depth = np.where(hit, near, depth)
        labels = np.where(hit, label, labels)
        rgb[hit] = color
    xyz = rays * depth[..., None]              # camera frame; z is the depth along the axis
    xyz[~np.isfinite(depth)] = np.nan
    return xyz.astype(np.float32), rgb.astype(np.float32), labels, pose


def write_pcd(path, xyz, rgb=None, labels=None, organized=True):
    """Write a PCD file with x y z [rgb] [label] (pypcd4, binary)."""
    flat = xyz.reshape(-1, 3)
    columns, names, types = [flat[:, 0], flat[:, 1], flat[:, 2]], ['x', 'y', 'z'], \
        [np.float32] * 3
    if rgb is not None:
        c = (np.clip(rgb.reshape(-1, 3), 0, 1) * 255).astype(np.uint32)
        columns.append((c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2])
        names.append('rgb')
        types.append(np.uint32)
    if labels is not None:
        columns.append(labels.reshape(-1).astype(np.uint32))
        names.append('label')
        types.append(np.uint32)
    cloud = pypcd4.PointCloud.from_points(columns, tuple(names), tuple(types))
    if organized:
        cloud.metadata.width, cloud.metadata.height = xyz.shape[1], xyz.shape[0]
    cloud.save(path, encoding=pypcd4.Encoding('binary'))
    return path


@pytest.fixture(scope='module')
def scene_file(tmp_path_factory):
    xyz, rgb, labels, pose = tabletop()
    return write_pcd(tmp_path_factory.mktemp('scan') / 'tabletop.pcd', xyz, rgb, labels), pose


def test_estimated_pose_levels_the_table_at_table_height(scene_file):
    path, truth = scene_file
    scan = load_scan(path)
    assert scan.organized and scan.rgb is not None and scan.labels is not None
    seen = perceive(scan, classify=None)
    true_up = truth[:3, :3].T @ np.array([0.0, 0.0, 1.0])          # in the camera frame
    assert math.degrees(math.acos(np.clip(seen.up @ true_up, -1, 1))) < 2.0
    assert 'table top' in seen.pose_source
    camera_height = seen.camera_to_map[2, 3]
    assert camera_height == pytest.approx(TABLE_HEIGHT + truth[2, 3], abs=0.02)
    tokens = seen.tokens
    assert len(tokens) == 2 and tokens.frame_id == 'map'
    order = np.argsort(-tokens.sizes[:, 2])               # the tall red box first
    tall, flat = order
    assert tokens.sizes[tall, 2] == pytest.approx(0.20, abs=0.02)
    assert tokens.centers[tall, 2] == pytest.approx(TABLE_HEIGHT + 0.10, abs=0.02)
    assert tokens.sizes[flat, 2] == pytest.approx(0.08, abs=0.02)
    assert tokens.colors[tall, 0] > 0.7 and tokens.colors[flat, 2] > 0.7
    assert tokens.centers[flat, 1] > tokens.centers[tall, 1] + 0.15     # blue is to the left
    assert tokens.centers[tall, 0] > 0.3 and seen.agent_pose == (0.0, 0.0, 0.0)


def test_a_given_pose_replaces_the_estimate(scene_file):
    path, truth = scene_file
    shifted = truth.copy()
    shifted[:3, 3] += [1.0, 2.0, TABLE_HEIGHT]            # the table at 0.75 m, moved
    from transforms3d.quaternions import mat2quat
    w, x, y, z = mat2quat(shifted[:3, :3])
    text = ','.join(f'{v:.9f}' for v in (*shifted[:3, 3], x, y, z, w))
    seen = perceive(load_scan(path), pose_from_text(text))
    assert seen.pose_source == 'given'
    centers = np.array(sorted(seen.tokens.centers.tolist(), key=lambda c: c[1]))
    # one view sees the near faces: the box centres lie up to half a box nearer in x
    truth_centers = np.array([[1.25, 1.95, TABLE_HEIGHT + 0.10],
                              [1.25, 2.20, TABLE_HEIGHT + 0.04]])
    assert (np.abs(centers - truth_centers) <= [0.05, 0.015, 0.015]).all(), centers
    x0, y0, yaw = agent_pose(shifted)
    assert (x0, y0) == pytest.approx((0.55, 2.0)) and abs(yaw - math.atan2(0.05, 0.7)) < 0.01


def test_a_far_plane_is_the_floor():
    transform, height = pose_from_plane([0.0, -0.8, -0.6], 2.0)
    assert height == pytest.approx(2.0)
    point = np.array([0.0, 0.0, 2.0 / 0.6])      # on the plane (normal . p + 2 = 0)
    assert (transform[:3, :3] @ point + transform[:3, 3])[2] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize('text', ['1,2,3', '1,2,3,0,0,0,0', 'a,b,c,d,e,f,g', '1,2,3,0,0,0,nan'])
def test_bad_poses_are_refused(text):
    with pytest.raises(ValueError, match='pose'):
        pose_from_text(text)


def test_scans_without_colour_organisation_or_valid_points(tmp_path):
    xyz, rgb, labels, _ = tabletop()
    xyz[:, :8] = np.nan                          # a band without returns, as a Kinect has
    no_color = load_scan(write_pcd(tmp_path / 'grey.pcd', xyz))
    assert no_color.rgb is None and no_color.image() is None
    assert any('no colour' in n for n in no_color.notes)
    assert any('NaN' in n for n in no_color.notes)
    assert len(perceive(no_color).tokens) == 2
    loose = load_scan(write_pcd(tmp_path / 'loose.pcd', xyz, rgb, organized=False))
    assert not loose.organized and any('not organised' in n for n in loose.notes)
    assert len(perceive(loose).tokens) >= 1
    empty = np.full_like(xyz, np.nan)
    with pytest.raises(ScanError, match='no finite point'):
        load_scan(write_pcd(tmp_path / 'empty.pcd', empty))
    with pytest.raises(ScanError, match='cannot read'):
        load_scan(tmp_path / 'missing.pcd')


def test_a_scan_without_a_plane_needs_a_pose():
    rng = np.random.default_rng(0)
    blob = rng.normal(size=(120, 160, 3)).astype(np.float32) * 0.05 + [0, 0, 1.0]
    scan = Scan(xyz=blob.astype(np.float32))
    with pytest.raises(ScanError, match='--pose'):
        perceive(scan)
    assert perceive(scan, np.eye(4)).pose_source == 'given'


def test_questions_from_labels_of_the_ray_cast_scene(scene_file):
    path, _ = scene_file
    scan = load_scan(path)
    objects, _ = real_objects(scan.xyz, scan.rgb, scan.labels)
    assert [o.shape for o in objects] == ['box', 'box']
    asked = {q.text: q for q in questions(objects)}
    assert asked['How many objects are on the table?'].answer == '2'
    assert asked['What color is the tallest object?'].answer == 'red'
    assert asked['Is there a box?'].answer == 'yes'
    assert asked['Is there a cylinder?'].answer == 'no'
    assert asked['What is left of the red box?'].answer == 'the blue box'
    assert 'What is left of the blue box?' not in asked        # nothing is


def test_ground_truth_of_the_real_scenes_matches_a_look_at_them():
    # Boxes in learn 0-28 (mOSD: boxes, stacked, occluded); learn32 a box and a lying can;
    # learn33/38/44 round things (a tin, bowls, mugs, a can).
    expected = {'learn0': 'bb', 'learn5': 'bb', 'learn10': 'bb', 'learn15': 'bbb',
                'learn17': 'bb', 'learn20': 'bb', 'learn24': 'bbb', 'learn25': 'bb',
                'learn28': 'bb', 'learn32': 'bc', 'learn33': 'ccccc', 'learn38': 'cccc',
                'learn44': 'ccc'}
    for name, shapes in expected.items():
        scan = load_scan(MOSD_LEARN / f'{name}.pcd')
        objects, _ = real_objects(scan.xyz, scan.rgb, scan.labels)
        ordered = sorted(objects, key=lambda o: o.object_id)
        assert ''.join(o.shape[0] for o in ordered) == shapes, name
    scan = load_scan(MOSD_LEARN / 'learn38.pcd')
    objects, _ = real_objects(scan.xyz, scan.rgb, scan.labels)
    colors = {o.object_id: o.color for o in objects}
    assert colors[5] == 'yellow' and colors[2] == 'white' and colors[3] == 'white'   # bowl, mugs
    asked = {q.kind: q for q in questions(objects)}
    assert asked['count'].answer == '4'
    assert 'tallest_color' not in asked     # the tall tin is red and brown: no one colour


def test_color_names_and_scoring():
    names = color_names(np.array([[0.9, 0.1, 0.1], [0.95, 0.95, 0.95], [0.05, 0.05, 0.05],
                                  [0.5, 0.5, 0.52], [0.1, 0.2, 0.9], [0.9, 0.85, 0.1],
                                  [0.45, 0.28, 0.12]]))
    assert list(names) == ['red', 'white', 'black', 'grey', 'blue', 'yellow', 'brown']
    count = RealQuestion('count', 'How many?', '3', accept=('3',))
    assert is_right(count, 'Three.') and is_right(count, '3') and not is_right(count, '2 or 3')
    exists = RealQuestion('exists', 'Is there a box?', 'yes', accept=('yes',), reject=('no',))
    assert is_right(exists, 'Yes') and not is_right(exists, 'No') and not is_right(exists, 'box')
    left = RealQuestion('left_of', 'What is left of the box?', 'the white cylinder',
                        accept=('cylinder', 'mug', 'bowl', 'white'))
    assert is_right(left, 'The white mug') and is_right(left, 'a bowl') and \
        is_right(left, 'white')
    assert not is_right(left, 'The white table') and not is_right(left, 'the red box')


def test_the_shipped_model_answers_about_a_scan(scene_file):
    from leo_ros.real.ask import ScanAgent
    path, _ = scene_file
    agent = ScanAgent(device='cpu')
    seen = agent.perceive(path)
    answer = agent.ask(path, 'How many objects are on the table?', perceived=seen)
    assert answer.ok and answer.text and answer.decision.kind
    assert answer.perceived is seen and len(seen.tokens) == 2


def test_leo_ask_command(tmp_path):
    command = [str(Path(sys.prefix) / 'bin' / 'leo-ask')]
    done = subprocess.run(command + [str(MOSD_LEARN / 'learn0.pcd'), 'Is there a box?',
                                     '--device', 'cpu', '--png', str(tmp_path / 'a.png')],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == 'Q: Is there a box?' and lines[1].startswith('A: ')
    assert 'pose=estimated' in lines[-1] and (tmp_path / 'a.png').is_file()
    missing = subprocess.run(command + [str(tmp_path / 'none.pcd'), 'hi'], capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 2 and 'cannot read' in missing.stderr
    rng = np.random.default_rng(1)
    blob = write_pcd(tmp_path / 'blob.pcd',
                     (rng.normal(size=(60, 80, 3)) * 0.05 + [0, 0, 1]).astype(np.float32))
    flat = subprocess.run(command + [str(blob), 'hi'], capture_output=True, text=True,
                          timeout=120)
    assert flat.returncode == 2 and 'no dominant plane' in flat.stderr, flat.stderr


def test_real_evaluation_scores_each_kind(tmp_path):
    import shutil
    from types import SimpleNamespace

    from leo_ros.real.ask import ScanAgent
    from leo_ros.real.evaluate import evaluate_scans, last_line, save

    class SaysYes:
        """A policy that answers every question with 'Yes' (what the scoring must see)."""

        def __init__(self):
            self.asked = []

        def act(self, tokens, image, instruction, agent_pose=(0.0, 0.0, 0.0)):
            self.asked.append((len(tokens), image.shape, instruction, agent_pose))
            return SimpleNamespace(text='Yes', kind='text', error='', action=None)

    for name in ('learn0', 'learn33'):
        shutil.copy(MOSD_LEARN / f'{name}.pcd', tmp_path / f'{name}.pcd')
    (tmp_path / 'broken.pcd').write_text('not a pcd')
    policy = SaysYes()
    agent = ScanAgent(policy=policy, classify=lambda t: (['unknown'] * len(t), np.ones(len(t))))
    result = evaluate_scans(tmp_path, agent, progress=False)
    metrics = result['metrics']
    # learn0: a box, no cylinder; learn33: cylinders, no box -> 'Yes' is right half the time
    assert (metrics['exists']['right'], metrics['exists']['asked']) == (2, 4)
    assert (metrics['count']['right'], metrics['count']['asked']) == (0, 2)
    assert list(result['skipped']) == ['broken.pcd']
    assert all(shape == (480, 640, 3) for _, shape, _, _ in policy.asked)
    asked = {q for _, _, q, _ in policy.asked}
    assert asked >= {'How many objects are on the table?', 'Is there a box?',
                     'Is there a cylinder?'}
    labelled = evaluate_scans(tmp_path, agent, progress=False, objects_from='labels')
    assert [s['objects_perceived'] for s in labelled['scenes']] == [2, 5]
    result['labelled_objects'] = {'metrics': labelled['metrics']}
    save(result, tmp_path / 'out')
    assert (tmp_path / 'out' / 'real_eval.png').is_file()
    assert 'exists=0.500' in last_line(result) and 'labelled_all=' in last_line(result)
