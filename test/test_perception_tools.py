"""PCD reading, leo-segment and leo-bench segmentation on files written here (no ROS)."""

from leo_ros.perception import bench
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
    expected = segment(xyz if organized else xyz.reshape(-1, 3), SegmentationConfig())
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
    assert values == {name: default for name, (default, _) in PARAMETERS.items()}
    docs = (root / 'docs' / 'perception.md').read_text()
    for name, (_, description) in PARAMETERS.items():
        assert f'| `{name}` |' in docs, name
        assert description
