"""PCD reading, leo-segment and leo-bench segmentation on files written here (no ROS)."""

import json

from leo_ros.perception import bench, scoring
from leo_ros.perception.pcd import read_pcd
from leo_ros.perception.segmentation import segment, SegmentationConfig
from leo_ros.tools import segment as segment_tool
import numpy as np
import pypcd4
import pytest
from test_perception_segmentation import render


def write_pcd(path, xyz, truth, encoding, organized=True, rgb8=None):
    """Write x y z rgb label in the mOSD layout; return the packed arrays written."""
    height, width = xyz.shape[:2]
    flat = xyz.reshape(-1, 3)
    label = np.where(truth >= 0, truth + 20, np.where(truth == -2, 1, 0)).reshape(-1)
    if rgb8 is None:
        rgb8 = np.zeros((len(flat), 3), np.uint32)
        rgb8[:, 0] = 200
    packed = (rgb8[:, 0] << 16) | (rgb8[:, 1] << 8) | rgb8[:, 2]
    cloud = pypcd4.PointCloud.from_points(
        [flat[:, 0], flat[:, 1], flat[:, 2], packed.astype(np.uint32), label.astype(np.uint32)],
        ('x', 'y', 'z', 'rgba', 'label'), (np.float32, np.float32, np.float32, np.uint32,
                                           np.uint32))
    if organized:
        cloud.metadata.width, cloud.metadata.height = width, height
    cloud.save(path, encoding=pypcd4.Encoding(encoding))
    return label


@pytest.mark.parametrize('encoding', ['ascii', 'binary', 'binary_compressed'])
def test_read_pcd_every_encoding(tmp_path, encoding):
    xyz, truth = render(width=64, height=48, noise=0.0)
    label = write_pcd(tmp_path / 'scene.pcd', xyz, truth, encoding)
    cloud = read_pcd(tmp_path / 'scene.pcd')
    assert cloud.organized and (cloud.height, cloud.width) == (48, 64)
    np.testing.assert_allclose(cloud.xyz, xyz.reshape(-1, 3), atol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(cloud.fields['label'], label)
    np.testing.assert_allclose(cloud.rgb[0], [200 / 255, 0, 0], atol=1e-6)
    grid_xyz, grid_rgb = cloud.grid()
    assert grid_xyz.shape == (48, 64, 3) and grid_rgb.shape == (48, 64, 3)


def test_read_pcd_rejects_garbage(tmp_path):
    path = tmp_path / 'bad.pcd'
    path.write_text('this is not a point cloud\n')
    with pytest.raises(ValueError, match='bad.pcd'):
        read_pcd(path)


@pytest.mark.parametrize('encoding,organized', [('binary_compressed', True), ('ascii', False)])
def test_leo_segment_writes_labels_in_file_order(tmp_path, encoding, organized):
    xyz, truth = render()
    write_pcd(tmp_path / 'scene.pcd', xyz, truth, encoding, organized=organized)
    out = tmp_path / 'out'
    assert segment_tool.main([str(tmp_path / 'scene.pcd'), '--out', str(out), '--png']) == 0
    labels = np.load(out / 'scene.npy')
    assert labels.shape == (xyz.shape[0] * xyz.shape[1],) and labels.dtype == np.int32
    assert (out / 'scene.png').stat().st_size > 1000
    rgb = np.broadcast_to(np.array([200 / 255, 0.0, 0.0], np.float32), xyz.shape)
    expected = segment(xyz if organized else xyz.reshape(-1, 3), SegmentationConfig(),
                       rgb=rgb if organized else rgb.reshape(-1, 3))
    np.testing.assert_array_equal(labels, expected.labels.reshape(-1))
    hits, truths, predicted, _ = bench.match_objects(labels, np.where(truth >= 0, truth + 20, 1)
                                                     .reshape(-1))
    assert hits == truths == 3 if organized else hits >= 2


def test_leo_segment_reports_unreadable_files(tmp_path, capsys):
    (tmp_path / 'bad.pcd').write_text('garbage')
    assert segment_tool.main([str(tmp_path / 'bad.pcd'), '--out', str(tmp_path / 'o')]) == 1
    assert 'bad.pcd' in capsys.readouterr().err


def test_bench_last_line(tmp_path, capsys):
    for seed in range(2):
        xyz, truth = render(seed=seed)
        write_pcd(tmp_path / f'scene{seed}.pcd', xyz, truth, 'binary')
    assert bench.main([str(tmp_path), '--repeats', '1']) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    values = dict(pair.split('=') for pair in last.split())
    assert list(values) == ['recall', 'precision', 'miou', 'ms_median', 'baseline_recall',
                            'baseline_ms_median', 'speedup']
    assert float(values['recall']) == 1.0 and float(values['precision']) == 1.0
    assert float(values['ms_median']) > 0 and float(values['speedup']) > 0


def test_bench_empty_folder(tmp_path):
    assert bench.main([str(tmp_path)]) == 2


def test_baseline_finds_separate_boxes():
    xyz, truth = render(boxes=[((-0.25, 0.0, 0.0), (-0.05, 0.2, 0.15)),
                               ((0.1, 0.05, 0.0), (0.22, 0.17, 0.2))])
    labels = bench.segment_baseline(xyz.reshape(-1, 3), bench.BaselineConfig(min_object_points=50))
    hits, truths, _, _ = bench.match_objects(labels, np.where(truth >= 0, truth + 20, 1)
                                             .reshape(-1))
    assert hits == truths == 2


def test_params_file_and_docs_cover_every_node_parameter():
    from pathlib import Path

    from leo_ros.nodes.perception_node import PARAMETERS
    import yaml
    root = Path(__file__).resolve().parents[1]
    params = yaml.safe_load((root / 'config' / 'perception.yaml').read_text())
    values = params['perception_node']['ros__parameters']
    assert values == {name: spec.default for name, spec in PARAMETERS.items()}
    docs = (root / 'docs' / 'perception.md').read_text()
    for name, spec in PARAMETERS.items():
        assert f'| `{name}` |' in docs, name
        assert spec.description


def test_bench_synthetic_reports_kinds_writes_pngs_and_pcds(tmp_path, capsys):
    out = tmp_path / 'pngs'
    written = tmp_path / 'scenes'
    assert bench.main(['--synthetic', '2', '--repeats', '1', '--no-baseline', '--png-dir',
                       str(out), '--write', str(written)]) == 0
    text = capsys.readouterr().out
    lines = text.strip().splitlines()
    assert any(line.startswith('touching ') for line in lines)
    assert any(line.startswith('stacked ') for line in lines)
    values = dict(pair.split('=') for pair in lines[-1].split())
    assert 0.0 < float(values['recall']) <= 1.0 and values['speedup'] == 'nan'
    pngs = sorted(p.name for p in out.glob('*.png'))
    assert pngs == ['clutter000_touching.png', 'clutter001_stacked.png']
    assert all((out / name).stat().st_size > 10000 for name in pngs)
    # The written scenes read back with their kinds from manifest.json and the same labels.
    manifest = json.loads((written / 'manifest.json').read_text())
    assert manifest == {'clutter000_touching.pcd': 'touching',
                        'clutter001_stacked.pcd': 'stacked'}
    again = bench.load_files(written)
    generated = bench.synthetic_scenes(2)
    for read, made in zip(again, generated):
        assert read.kind == made.kind and read.organized
        np.testing.assert_array_equal(read.truth, made.truth)
        np.testing.assert_allclose(read.xyz, made.xyz, atol=1e-6, equal_nan=True)


def test_bench_reports_kinds_from_a_manifest(tmp_path, capsys):
    for seed, kind in ((0, 'pile'), (1, 'row')):
        xyz, truth = render(seed=seed)
        write_pcd(tmp_path / f'scene{seed}.pcd', xyz, truth, 'binary')
    (tmp_path / 'manifest.json').write_text(json.dumps({'scene0.pcd': 'pile', 'scene1': 'row'}))
    assert bench.main([str(tmp_path), '--repeats', '1', '--no-baseline']) == 0
    kinds = [line.split()[0] for line in capsys.readouterr().out.splitlines()
             if line.split() and line.split()[0] in ('pile', 'row', 'all')]
    assert kinds == ['pile', 'row', 'all']


def test_bench_bad_inputs(capsys):
    assert bench.main(['--bad-input', '--repeats', '1']) == 0
    out = capsys.readouterr().out.strip().splitlines()
    rows = {line[:14].strip(): line.split() for line in out[1:-1]}
    assert set(rows) == {'all NaN', 'empty', 'unorganized', 'one plane', '45 % NaN',
                         '200 objects'}
    assert rows['all NaN'][-3:-1] == ['0', '0'] and rows['empty'][-3:-1] == ['0', '0']
    assert rows['one plane'][-3] == '0'
    assert rows['200 objects'][-3] == '60' and int(rows['200 objects'][-2]) >= 50
    assert int(rows['45 % NaN'][-3]) >= 8
    assert out[-1].startswith('all_NaN_ms=')


def test_bench_needs_something_to_score(tmp_path):
    assert bench.main([]) == 2
    assert bench.main([str(tmp_path), '--repeats', '0']) == 2


@pytest.mark.parametrize('name,kind', [('learn0.pcd', 'boxes'), ('learn20.pcd', 'stacked boxes'),
                                       ('learn30.pcd', 'occluded'), ('learn44', 'cylinders'),
                                       ('test50.pcd', 'mixed'), ('test60.pcd', 'cluttered'),
                                       ('clutter012_leaning.pcd', 'leaning'), ('other.pcd', '')])
def test_scene_kinds_from_names(name, kind):
    assert scoring.scene_kind(name) == kind
    assert scoring.scene_kind(name, {name: 'from manifest'}) == 'from manifest'


def test_bad_manifest_is_an_error(tmp_path):
    (tmp_path / 'manifest.json').write_text('{not json')
    with pytest.raises(ValueError, match='manifest.json'):
        scoring.read_manifest(tmp_path)


def test_diagnose_names_merged_split_and_missed_objects():
    truth = np.array([20] * 4 + [30] * 4 + [40] * 6 + [50] * 4 + [1] * 4)
    predicted = np.array([0] * 8 + [1, 1, 2, 2, 3, 3] + [-1] * 4 + [0, 0, -2, -2])
    found = scoring.diagnose(predicted, truth)
    assert list(found['true_ids']) == [20, 30, 40, 50]
    assert list(found['status']) == ['merged', 'merged', 'split', 'missed']
    assert list(found['merging']) == [True, False, False, False]
    assert list(scoring.diagnose(np.array([0] * 4), np.array([20] * 4))['status']) == ['hit']


def test_predictions_on_ignored_parts_are_not_counted():
    truth = np.array([20, 20, 20, 20, 10, 10, 10, 1])
    predicted = np.array([0, 0, 0, 0, 1, 1, 1, -2])
    assert bench.match_objects(predicted, truth)[:3] == (1, 1, 1)
    predicted[3:7] = 1                      # half on the object, half on the ignored part
    assert bench.match_objects(predicted, truth)[:3] == (1, 1, 1)
