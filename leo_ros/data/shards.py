"""
Datasets on disk: JSONL sample shards, per-scene token/image archives and a manifest.

Layout of one split (see docs/data.md)::

    <root>/<split>/manifest.json           counts, drop reasons, seeds, config, file list
    <root>/<split>/shard-00000.jsonl       one sample per line
    <root>/<split>/scenes/<seed>.npz       SceneTokens, situations, ego-view images, scene JSON
    <root>/<split>/scenes/<seed>-observed.npz   tokens as perception sees the first situations
"""

from collections import Counter
from dataclasses import asdict
import hashlib
import json
from pathlib import Path
import time

from leo_ros.data.engine import DataEngine
from leo_ros.scene_tokens import SceneTokens
import numpy as np
from tqdm import tqdm

FORMAT_VERSION = 1
#: Scene seeds of each split live in disjoint ranges of this width.
SPLIT_SPAN = 1_000_000
SPLIT_OFFSETS = {'train': 0, 'val': SPLIT_SPAN, 'test': 2 * SPLIT_SPAN}


def split_seeds(split: str, count: int, start: int = 0) -> list:
    """Return ``count`` scene seeds of a split, from index ``start`` of its range."""
    if split not in SPLIT_OFFSETS:
        raise ValueError(f'unknown split {split!r}; expected one of {sorted(SPLIT_OFFSETS)}')
    if count < 0 or start < 0 or start + count > SPLIT_SPAN:
        raise ValueError(f'split {split}: start {start} and count {count} must lie in '
                         f'[0, {SPLIT_SPAN}]')
    base = SPLIT_OFFSETS[split]
    return list(range(base + start, base + start + count))


def split_of_seed(seed: int) -> str:
    """Return the split a scene seed belongs to."""
    for split, base in SPLIT_OFFSETS.items():
        if base <= seed < base + SPLIT_SPAN:
            return split
    raise ValueError(f'seed {seed} is in no split range')


def write_split(root, split, scenes, start=0, engine: DataEngine = None, shard_size=2000,
                progress=True) -> dict:
    """
    Generate a split: its scenes' samples, token archives and manifest.

    :param root: dataset directory (the split goes into ``root/split``)
    :param scenes: number of scenes
    :param start: index of the first scene in the split's seed range
    :return: the manifest
    """
    engine = engine or DataEngine()
    out = Path(root) / split
    (out / 'scenes').mkdir(parents=True, exist_ok=True)
    for old in out.glob('shard-*.jsonl'):
        old.unlink()
    seeds = split_seeds(split, scenes, start)
    proposed, dropped, families = Counter(), Counter(), Counter()
    shards, shard, shard_lines, total = [], None, 0, 0
    began = time.perf_counter()
    bar = tqdm(seeds, desc=f'leo-data {split}', unit='scene', disable=not progress)
    for seed in bar:
        result = engine.scene(seed)
        proposed += result.proposed
        dropped += result.dropped
        save_scene(out / 'scenes' / f'{seed}.npz', result, engine.config)
        for sample in result.samples:
            if shard is None or shard_lines >= shard_size:
                if shard:
                    shard.close()
                shards.append(f'shard-{len(shards):05d}.jsonl')
                shard, shard_lines = open(out / shards[-1], 'w', encoding='utf-8'), 0
            shard.write(json.dumps(sample, separators=(',', ':')) + '\n')
            shard_lines += 1
            total += 1
            families[sample['family']] += 1
        bar.set_postfix(samples=total)
    if shard:
        shard.close()
    seconds = time.perf_counter() - began
    candidates = sum(proposed.values())
    manifest = {
        'format_version': FORMAT_VERSION,
        'split': split,
        'seeds': [seeds[0], seeds[-1]] if seeds else [],
        'scenes': len(seeds),
        'samples': total,
        'families': dict(sorted(families.items())),
        'proposed': dict(sorted(proposed.items())),
        'candidates': candidates,
        'dropped': dict(sorted(dropped.items())),
        'drop_rate': round(sum(dropped.values()) / max(candidates, 1), 4),
        'shards': shards,
        'seconds': round(seconds, 2),
        'samples_per_second': round(total / max(seconds, 1e-9), 1),
        'templates': engine.templates.source,
        'templates_sha256': _sha256(engine.templates.source),
        'config': _jsonable(asdict(engine.config)),
    }
    (out / 'manifest.json').write_text(json.dumps(manifest, indent=2))
    return manifest


def save_scene(path, result, config):
    """Write one scene's tokens, situations, ego-view images and description (.npz)."""
    world = result.world
    tokens = world.scene_tokens(config.points_per_object)
    arrays = {
        'points': tokens.points.astype(np.float16),   # (K, P, 6): LEO-normalised samples
        'centers': tokens.centers, 'sizes': tokens.sizes, 'colors': tokens.colors,
        'scales': tokens.scales, 'point_counts': tokens.point_counts, 'ids': tokens.ids,
        'labels': np.array(tokens.labels, dtype=str),
        'situations': np.asarray(result.situations, np.float32),  # (S, 3): x, y, yaw
        'scene_json': np.array(json.dumps(world.scene.to_dict())),
    }
    width, height = config.image_size
    if width and height:
        home = world.snapshot()
        images = []
        for pose in result.situations:
            world.robot[:] = pose
            images.append(world.ego_image(width, height))
        world.restore(home)
        arrays['ego_images'] = np.stack(images)  # (S, H, W, 3) uint8
    np.savez_compressed(path, **arrays)


def load_scene(root, split, seed) -> dict:
    """
    Read one scene archive.

    :return: ``tokens`` (SceneTokens), ``situations`` (S, 3), ``ego_images`` (S, H, W, 3) or
        None, ``scene`` (dict)
    """
    path = Path(root) / split / 'scenes' / f'{int(seed)}.npz'
    with np.load(path, allow_pickle=False) as data:
        tokens = SceneTokens(points=data['points'].astype(np.float32),
                             centers=data['centers'], sizes=data['sizes'],
                             colors=data['colors'], scales=data['scales'],
                             point_counts=data['point_counts'], ids=data['ids'],
                             labels=[str(v) for v in data['labels']],
                             confidences=np.ones(len(data['ids']), np.float32),
                             frame_id='map')
        return {'tokens': tokens, 'situations': data['situations'],
                'ego_images': data['ego_images'] if 'ego_images' in data else None,
                'scene': json.loads(str(data['scene_json']))}


def observed_path(root, split, seed) -> Path:
    """Return the path of a scene's observed-token archive."""
    return Path(root) / split / 'scenes' / f'{int(seed)}-observed.npz'


def observe_scene(root, split, seed, situations, config, points_per_object):
    """
    Write the tokens perception keeps when looking around from a scene's first situations.

    :param situations: how many of the scene's situations to look around from
    :param config: the ``LookAroundConfig`` (:func:`leo_ros.data.observed.look_around`)
    """
    from leo_ros.data.observed import look_around
    from leo_ros.sim.world import World
    scene = load_scene(root, split, seed)
    world = World(int(seed))
    sets = [look_around(world, tuple(float(v) for v in pose), config, points_per_object,
                        seed=int(seed))
            for pose in scene['situations'][:situations]]
    arrays = {name: np.concatenate([getattr(t, name) for t in sets])
              for name in ('centers', 'sizes', 'colors', 'scales', 'point_counts', 'ids')}
    arrays['points'] = np.concatenate([t.points for t in sets]).astype(np.float16)
    arrays['labels'] = np.array(sum((list(t.labels) for t in sets), []), dtype=str)
    arrays['situation'] = np.concatenate([np.full(len(t), n, np.int64)
                                          for n, t in enumerate(sets)])   # (M,)
    arrays['stamp'] = np.array(json.dumps(observed_stamp(situations, config,
                                                         points_per_object)))
    np.savez_compressed(observed_path(root, split, seed), **arrays)


def observed_stamp(situations, config, points_per_object) -> dict:
    """Return what an observed-token archive was made with."""
    look = asdict(config)
    if not look.get('sensor', True):
        del look['sensor']        # exact depth: archives made before the option stay valid
    return {'situations': int(situations), 'points': int(points_per_object),
            'look_around': look}


def load_observed(root, split, seed, stamp=None) -> list:
    """
    Read a scene's observed tokens: one ``SceneTokens`` per situation (ids are world ids).

    :param stamp: when given, an archive made otherwise counts as missing
    :return: the list, empty when there is no (matching) archive
    """
    path = observed_path(root, split, seed)
    if not path.is_file():
        return []
    with np.load(path, allow_pickle=False) as data:
        if stamp is not None and json.loads(str(data['stamp'])) != _jsonable(stamp):
            return []
        situation = data['situation']
        sets = []
        for number in range(int(situation.max()) + 1 if len(situation) else 0):
            rows = situation == number
            sets.append(SceneTokens(
                points=data['points'][rows].astype(np.float32), centers=data['centers'][rows],
                sizes=data['sizes'][rows], colors=data['colors'][rows],
                scales=data['scales'][rows], point_counts=data['point_counts'][rows],
                ids=data['ids'][rows], labels=[str(v) for v in data['labels'][rows]],
                confidences=np.ones(int(rows.sum()), np.float32), frame_id='map'))
        return sets


def write_observed(root, split, seeds, situations, config, points_per_object, workers=1,
                   progress=True) -> int:
    """
    Write the observed-token archives a split lacks (or that were made otherwise).

    :param workers: processes that render scenes in parallel
    :return: scenes written
    """
    stamp = observed_stamp(situations, config, points_per_object)
    missing = [s for s in seeds if not load_observed(root, split, s, stamp)]
    jobs = [(str(root), split, int(s), situations, config, points_per_object) for s in missing]
    bar = tqdm(total=len(jobs), desc=f'leo-data observe {split}', unit='scene',
               disable=not progress)
    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        with multiprocessing.get_context('spawn').Pool(workers) as pool:
            for _ in pool.imap_unordered(_observe_job, jobs):
                bar.update()
    else:
        for job in jobs:
            _observe_job(job)
            bar.update()
    bar.close()
    return len(jobs)


def _observe_job(job):
    observe_scene(*job)


def read_samples(root, split):
    """Yield the samples of a split in shard order."""
    out = Path(root) / split
    manifest = json.loads((out / 'manifest.json').read_text())
    for name in manifest['shards']:
        with open(out / name, encoding='utf-8') as handle:
            for line in handle:
                yield json.loads(line)


def _sha256(path):
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ''


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value
