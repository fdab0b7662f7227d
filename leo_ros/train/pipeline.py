"""
The whole training pipeline behind ``leo-train`` (no ROS).

1. data: train / val / test splits from the data engine (by scene seed), skipped when present;
2. object encoder: pretrain it and its category head on the train scenes' objects;
3. action tokenizer: grounded (nothing to learn), bins, or a residual VQ fitted on the expert
   demonstrations (robot frame);
4. records (reworded copies added) and the policy: the backbone ('tiny' gets a BPE trained on
   the records' text), optionally initialised from another policy's encoders;
5. examples: the LM's tokens and MiniLM states of every instruction;
6. stage 1: 3D-language alignment (object captions, referring expressions, scene captions);
7. stage 2: instruction tuning with actions (QA, navigation, pick-and-place, plans,
   refusals), LoRA;
8. save the model directory, the metrics log and the curves; optionally evaluate.

Every step returns what it derives; none writes into the configuration it is given.
"""

from dataclasses import asdict, dataclass, field, fields, replace
import json
import os
from pathlib import Path
import shutil
import time

from leo_ros.data.engine import EngineConfig
from leo_ros.model.config import PolicyConfig
from leo_ros.train.augment import augment_records, AugmentConfig
from leo_ros.train.dataset import STAGE1_FAMILIES, STAGE2_FAMILIES
from leo_ros.train.trainer import StageConfig
import numpy as np
import yaml


@dataclass
class DataConfig:
    """
    The dataset the pipeline writes (``leo-data`` format) and how much of each family.

    :param train_scenes: scenes in the train split
    :param val_scenes: scenes in the validation split
    :param test_scenes: scenes in the test split (evaluation draws its episodes there)
    :param points: points per object token
    :param image_size: (width, height) of the ego-view images
    :param per_scene: EngineConfig counts per scene (situations, qa, nav, ...)
    :param refer_phrasings: instructions of the derived referring-expression task
    :param templates: the data engine's templates file (None: the package's default); a
        relative path is looked up from the working directory, then the repository root
    :param observed_situations: per scene, situations to look around from as perception
        does (``leo_ros.data.observed``); 0 trains on mesh-sampled tokens only
    :param observed_views: frames per look-around
    :param observed_fraction: share of the examples (whose targets were seen) that read the
        observed tokens instead of the mesh-sampled ones
    :param observed_sensor: render the look-arounds through the Kinect-like depth model
        (:mod:`leo_ros.sim.sensor`) instead of exact depth
    """

    train_scenes: int = 600
    val_scenes: int = 30
    test_scenes: int = 50
    points: int = 256
    image_size: tuple = (64, 48)
    per_scene: dict = field(default_factory=lambda: {
        'situations': 4, 'object_captions': 8, 'scene_captions': 1, 'qa': 24, 'nav': 8,
        'pick_place': 10, 'plan': 4})
    refer_phrasings: tuple = ('Which object is {target}?', 'Point at {target}.',
                              'Find {target}.')
    templates: str = None
    observed_situations: int = 0
    observed_views: int = 12
    observed_fraction: float = 0.5
    observed_sensor: bool = False

    def __post_init__(self):
        for name in ('train_scenes', 'val_scenes', 'points', 'observed_views'):
            if getattr(self, name) < 1:
                raise ValueError(f'DataConfig.{name} must be >= 1, got {getattr(self, name)}')
        situations = self.per_scene.get('situations', EngineConfig.situations)
        if not 0 <= self.observed_situations <= situations:
            raise ValueError(f'DataConfig.observed_situations must be in [0, {situations}] '
                             f'(per_scene situations), got {self.observed_situations}')
        if not isinstance(self.observed_sensor, bool):
            raise ValueError(f'DataConfig.observed_sensor must be true or false, got '
                             f'{self.observed_sensor!r}')
        if not 0.0 <= self.observed_fraction <= 1.0:
            raise ValueError(f'DataConfig.observed_fraction must be in [0, 1], got '
                             f'{self.observed_fraction}')
        if self.test_scenes < 0:
            raise ValueError(f'DataConfig.test_scenes must be >= 0, got {self.test_scenes}')
        self.image_size = tuple(self.image_size)
        self.refer_phrasings = tuple(self.refer_phrasings)
        if not self.refer_phrasings or any('{target}' not in p for p in self.refer_phrasings):
            raise ValueError(f'DataConfig.refer_phrasings must each contain {{target}}, '
                             f'got {self.refer_phrasings}')


@dataclass
class ClassifierStepConfig:
    """Object-encoder pretraining: steps, batch, learning rate, backbone and sizes."""

    steps: int = 500
    batch_size: int = 128
    lr: float = 2e-3
    kind: str = 'pointnet'
    points: int = 256
    width: int = 128
    embedding: int = 64

    def __post_init__(self):
        for name in ('steps', 'batch_size', 'points', 'width', 'embedding'):
            if getattr(self, name) < 1:
                raise ValueError(f'ClassifierStepConfig.{name} must be >= 1, got '
                                 f'{getattr(self, name)}')


@dataclass
class TrainConfig:
    """
    Everything ``leo-train`` does, from one YAML file (config/train_default.yaml).

    :param init_from: a trained policy directory, or a ``leo-train`` work directory (its
        latest weights, even mid-stage), whose encoder and head weights (those whose names and
        shapes match) start this one: a new backbone need not relearn the scene
    """

    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    classifier: ClassifierStepConfig = field(default_factory=ClassifierStepConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    rvq: dict = field(default_factory=lambda: {'codebook_size': 256, 'train_steps': 100})
    bins: dict = field(default_factory=lambda: {'position_resolution': 0.05})
    stage1: StageConfig = field(default_factory=lambda: StageConfig(name='stage1'))
    stage2: StageConfig = field(default_factory=lambda: StageConfig(name='stage2', llm='lora'))
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    skip_stage1: bool = False
    mixed_precision: bool = True
    init_from: str = ''

    def __post_init__(self):
        if self.stage1.name != 'stage1' or self.stage2.name != 'stage2':
            raise ValueError(f'TrainConfig stages must be named stage1 and stage2, got '
                             f'{self.stage1.name!r}, {self.stage2.name!r}')

    @classmethod
    def from_dict(cls, data: dict) -> 'TrainConfig':
        """Build from a nested dict (YAML); unknown keys raise ValueError naming them."""
        data = dict(data or {})
        nested = {'data': DataConfig, 'classifier': ClassifierStepConfig,
                  'policy': PolicyConfig, 'stage1': StageConfig, 'stage2': StageConfig,
                  'augment': AugmentConfig}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f'unknown training config keys: {unknown}; known: {sorted(known)}')
        kwargs = {}
        for key, value in data.items():
            if key in nested:
                value = dict(value or {})
                if key == 'policy':
                    kwargs[key] = PolicyConfig.from_dict(value)
                    continue
                if key in ('stage1', 'stage2'):
                    value.setdefault('name', key)
                    if key == 'stage2':
                        value.setdefault('llm', 'lora')
                allowed = {f.name for f in fields(nested[key])}
                bad = sorted(set(value) - allowed)
                if bad:
                    raise ValueError(f'unknown keys in {key}: {bad}; known: {sorted(allowed)}')
                value = nested[key](**value)
            kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def load(cls, path) -> 'TrainConfig':
        with open(path, encoding='utf-8') as handle:
            return cls.from_dict(yaml.safe_load(handle))

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


class MetricsLog:
    """Append-only JSONL metrics log (also echoed as short lines when ``echo``)."""

    def __init__(self, path, echo=False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.echo = echo

    def __call__(self, line: dict):
        line = {'time': round(time.time(), 1), **line}
        with open(self.path, 'a', encoding='utf-8') as handle:
            handle.write(json.dumps(line) + '\n')
        if self.echo:
            print(json.dumps(line), flush=True)


def templates_path(config: TrainConfig):
    """Return the templates file of the data (None for the package default)."""
    path = config.data.templates
    if not path:
        return None
    path = Path(path)
    if not path.is_absolute() and not path.is_file():
        path = Path(__file__).resolve().parents[2] / path
    if not path.is_file():
        raise FileNotFoundError(f'templates file {config.data.templates} not found')
    return path


def generate_data(config: TrainConfig, root: Path, log, progress=True):
    """Write the splits unless a matching dataset is already there."""
    from leo_ros.data.engine import DataEngine
    from leo_ros.data.shards import write_split
    from leo_ros.data.templates import Templates
    data = config.data
    templates = Templates.load(templates_path(config))
    engine = DataEngine(EngineConfig(points_per_object=data.points, image_size=data.image_size,
                                     **data.per_scene), templates)
    wanted = {'train': data.train_scenes, 'val': data.val_scenes, 'test': data.test_scenes}
    stamp = {'per_scene': data.per_scene, 'points': data.points,
             'image_size': list(data.image_size)}
    if data.templates:
        stamp['templates'] = str(data.templates)
    for split, count in wanted.items():
        manifest_path = root / split / 'manifest.json'
        if manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text())
            if manifest.get('scenes') == count and manifest.get('pipeline') == stamp:
                continue
        if count <= 0:
            continue
        manifest = write_split(root, split, count, 0, engine, progress=progress)
        manifest['pipeline'] = stamp
        manifest_path.write_text(json.dumps(manifest, indent=2))
        log({'stage': 'data', 'split': split, 'scenes': manifest['scenes'],
             'samples': manifest['samples'], 'families': manifest['families'],
             'drop_rate': manifest['drop_rate'], 'seconds': manifest['seconds']})
    if data.observed_situations:
        from leo_ros.data.shards import split_seeds, write_observed
        began = time.perf_counter()
        for split in ('train', 'val'):
            written = write_observed(root, split, split_seeds(split, wanted[split]),
                                     data.observed_situations, look_around_config(data),
                                     data.points, workers=min(2, os.cpu_count() or 1),
                                     progress=progress)
            if written:
                log({'stage': 'data', 'split': split, 'observed_scenes': written,
                     'seconds': round(time.perf_counter() - began, 1)})


def look_around_config(data: DataConfig):
    """Return the look-around the observed tokens of ``data`` are made with."""
    from leo_ros.data.observed import LookAroundConfig
    return LookAroundConfig(views=data.observed_views, sensor=data.observed_sensor)


def observed_stamp(data: DataConfig):
    """Return the stamp of ``data``'s observed tokens, or None when it uses none."""
    from leo_ros.data.shards import observed_stamp as stamp
    if not data.observed_situations:
        return None
    return stamp(data.observed_situations, look_around_config(data), data.points)


def collect_objects(root, split, seeds, observed=None):
    """
    Return the objects of a split's scenes as classifier training arrays.

    :param observed: stamp of observed tokens to add (partial views), or None
    """
    from leo_ros.data.shards import load_observed, load_scene
    from leo_ros.sim.scene import CATEGORIES
    points, sizes, scales, labels = [], [], [], []
    for seed in seeds:
        sets = [load_scene(root, split, seed)['tokens']]
        if observed is not None:
            sets += load_observed(root, split, seed, observed)
        for tokens in sets:
            points.append(tokens.points)
            sizes.append(tokens.sizes)
            scales.append(tokens.scales)
            labels += [CATEGORIES.index(label) for label in tokens.labels]
    return {'points': np.concatenate(points).astype(np.float32),
            'sizes': np.concatenate(sizes).astype(np.float32),
            'scales': np.concatenate(scales).astype(np.float32),
            'labels': np.asarray(labels, np.int64)}


def make_action_tokenizer(config: TrainConfig, root, log, progress=True):
    """Return the action tokenizer of ``config.policy.action_mode`` (RVQ fitted on demos)."""
    mode = config.policy.action_mode
    if mode == 'grounded':
        from leo_ros.actions.grounded import GroundedConfig, GroundedTokenizer
        return GroundedTokenizer(GroundedConfig(max_objects=config.policy.scene.max_objects))
    from leo_ros.actions.tokenizers import (ActionCodec, BinConfig, BinTokenizer, RvqConfig,
                                            RvqTokenizer)
    from leo_ros.actions.workspace import WorkspaceConfig
    # Robot-frame actions: positions within +-7 m of the robot.
    workspace = WorkspaceConfig(x_min=-7.0, x_max=7.0, y_min=-7.0, y_max=7.0, z_min=0.0,
                                z_max=1.6)
    if mode == 'bins':
        return ActionCodec(continuous=BinTokenizer(BinConfig(**config.bins), workspace))
    tokenizer = RvqTokenizer(RvqConfig(**config.rvq))
    tokenizer.fit(expert_arrays(root), progress=progress)
    codec = ActionCodec(continuous=tokenizer)
    log({'stage': 'rvq', 'event': 'fitted', **rvq_errors(tokenizer, expert_arrays(root, 'val'))})
    return codec


def expert_arrays(root, split='train') -> dict:
    """Return the expert's NavGoal / PickPlace demonstrations of a split in the robot frame."""
    from leo_ros.actions.types import action_from_dict
    from leo_ros.actions.workspace import actions_to_arrays
    from leo_ros.data.shards import read_samples
    from leo_ros.model.features import action_to_robot_frame
    actions = []
    for sample in read_samples(root, split):
        situation = sample['situation']
        pose = (situation['x'], situation['y'], situation['yaw'])
        for data in sample['actions']:
            action = action_from_dict(data)
            if action.kind == 'nav_goal':
                actions.append(action_to_robot_frame(action, pose))
                pose = (action.x, action.y, action.yaw)
            elif action.kind == 'pick_place':
                actions.append(action_to_robot_frame(action, pose))
    return actions_to_arrays(actions)


def rvq_errors(tokenizer, arrays) -> dict:
    """Return p95 position [cm] and yaw [deg] round-trip errors of held-out demonstrations."""
    from leo_ros.actions.workspace import position_yaw_errors
    out = {}
    for kind, values in arrays.items():
        decoded = tokenizer.decode_values(kind, tokenizer.encode_values(kind, values))
        pos, yaw = position_yaw_errors(kind, values, decoded)
        out[f'{kind}_pos_err_p95_cm'] = round(float(np.percentile(pos, 95)) * 100, 2)
        out[f'{kind}_yaw_err_p95_deg'] = round(float(np.degrees(np.percentile(yaw, 95))), 2)
    return out


def run_pipeline(config: TrainConfig, out_dir, data_dir=None, progress=True, echo=False,
                 evaluate_episodes=0, phrasings=(), command=''):
    """
    Run every step; return the path of the trained model directory.

    :param out_dir: work directory: ``model/``, ``metrics.jsonl``, ``curves.png``, stage
        checkpoints
    :param data_dir: dataset directory (default ``out_dir/data``)
    :param evaluate_episodes: when > 0, run ``leo-eval`` with this many episodes per family
    :param phrasings: extra phrasings files to evaluate with (held-out wordings)
    :param command: the command line that ran it (recorded in the model's config.json)
    """
    import torch
    began = time.perf_counter()
    torch.manual_seed(config.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'train_config.json').write_text(json.dumps(config.to_dict(), indent=2))
    log = MetricsLog(out_dir / 'metrics.jsonl', echo=echo)
    log({'stage': 'pipeline', 'event': 'start', 'threads': torch.get_num_threads(),
         'config': config.to_dict()})
    root = Path(data_dir) if data_dir else out_dir / 'data'
    timings = Timings()
    with timings('data'):
        generate_data(config, root, log, progress)
    with timings('classifier'):
        encoder = pretrain_object_encoder(config, root, out_dir, log, progress)
    with timings('examples'):
        action_tokenizer = make_action_tokenizer(config, root, log, progress)
        records = read_records(config, root)
        policy = build_policy(config, encoder, action_tokenizer, records['train'], log)
        examples = build_stage_examples(config, policy, records, root, log, progress)
    with timings('stage1'):
        if not config.skip_stage1:
            policy = train_stage(policy, examples, config.stage1, out_dir, log, config,
                                 progress)
    with timings('stage2'):
        policy = train_stage(policy, examples, config.stage2, out_dir, log, config, progress)
    model_dir = save_model(policy, config, out_dir, timings.finish(began), log, command)
    if evaluate_episodes > 0:
        evaluate_trained(model_dir, config, out_dir, evaluate_episodes, phrasings, progress)
    return model_dir


class Timings:
    """Seconds per pipeline step (``with timings('name'): ...``)."""

    def __init__(self):
        self.seconds = {}
        self._name = None

    def __call__(self, name):
        self._name = name
        return self

    def __enter__(self):
        self._began = time.perf_counter()

    def __exit__(self, *exc):
        self.seconds[self._name] = round(time.perf_counter() - self._began, 1)

    def finish(self, began) -> dict:
        return {**self.seconds, 'total': round(time.perf_counter() - began, 1)}


def pretrain_object_encoder(config: TrainConfig, root, out_dir, log, progress=True):
    """
    Return the object encoder pretrained on the train scenes' categories.

    It is read back when this run made it already, or taken from ``init_from`` (the encoders
    started from that policy read its embeddings).
    """
    from leo_ros.data.shards import split_seeds
    from leo_ros.model.object_encoder import ObjectEncoder, ObjectEncoderConfig
    from leo_ros.train.classifier import classifier_accuracy, train_classifier
    observed = observed_stamp(config.data)      # None: mesh-sampled tokens only
    # never trained into init_from's directory: that run's encoder is read, or nothing
    directory = encoder_directory(Path(config.init_from)) if config.init_from \
        else out_dir / 'classifier'
    if (directory / 'classifier.safetensors').is_file():
        encoder = ObjectEncoder.load(directory)
    else:
        step = config.classifier
        objects = collect_objects(root, 'train', split_seeds('train', config.data.train_scenes),
                                  observed)
        encoder = train_classifier(
            objects, ObjectEncoderConfig(kind=step.kind, points=step.points, width=step.width,
                                         embedding=step.embedding),
            steps=step.steps, batch_size=step.batch_size, lr=step.lr, seed=config.seed,
            progress=progress, log=log)
        encoder.save(directory)
    val_objects = collect_objects(root, 'val', split_seeds('val', config.data.val_scenes))
    done = {'stage': 'classifier', 'event': 'done',
            'val_accuracy': classifier_accuracy(encoder, val_objects)}
    if observed is not None:
        seen = collect_objects(root, 'val', split_seeds('val', config.data.val_scenes), observed)
        done['val_accuracy_with_observed'] = classifier_accuracy(encoder, seen)
    log(done)
    return encoder


def read_records(config: TrainConfig, root) -> dict:
    """Return the train (with reworded copies) and val records, and the reworded count."""
    from leo_ros.data.templates import Templates
    from leo_ros.train.dataset import load_records
    templates = Templates.load(templates_path(config))
    rng = np.random.default_rng(config.seed)
    train = load_records(root, 'train', templates, config.data.refer_phrasings, rng)
    val = load_records(root, 'val', templates, config.data.refer_phrasings, rng)
    augmented = augment_records(train, templates, config.augment,
                                np.random.default_rng([config.seed, 11]))
    return {'train': augmented, 'val': val, 'reworded': len(augmented) - len(train)}


def policy_config(config: TrainConfig, encoder) -> PolicyConfig:
    """Return the policy's configuration with what the data and the encoder fix."""
    policy = config.policy
    return replace(policy, scene=replace(policy.scene, object_embedding=encoder.config.embedding),
                   image=replace(policy.image, render_size=tuple(config.data.image_size)),
                   llm=replace(policy.llm), lora=False)


def build_policy(config: TrainConfig, encoder, action_tokenizer, records, log):
    """Return a fresh policy (tiny: BPE on the records' text), initialised as configured."""
    from leo_ros.model.checkpoint import create_policy
    texts = [r[2] for r in records] + [r[0]['answer'] for r in records]
    policy = create_policy(policy_config(config, encoder), encoder, action_tokenizer, texts,
                           seed=config.seed)
    if config.init_from:
        log({'stage': 'policy', 'event': 'init', 'from': config.init_from,
             **initialise_from(policy, config.init_from)})
    trainable = sum(p.numel() for n, p in policy.named_parameters()
                    if not n.startswith(('object_encoder.', 'llm.')))
    log({'stage': 'policy', 'llm': config.policy.llm.source, 'parameters_here': trainable,
         'llm_parameters': sum(p.numel() for p in policy.llm.parameters()),
         'vocabulary': len(policy.tokenizer), 'added_tokens': len(policy.space.added)})
    return policy


def initialise_from(policy, directory) -> dict:
    """Copy the weights of a trained policy whose names and shapes match (not the LM's)."""
    own = policy.state_dict()
    state, source = latest_weights(Path(directory))
    copied = {k: v for k, v in state.items() if not k.startswith('llm.') and k in own
              and own[k].shape == v.shape}
    policy.load_state_dict(copied, strict=False)
    return {'copied': len(copied), 'skipped': len(own) - len(copied), 'weights': source}


def latest_weights(directory: Path):
    """
    Return the latest weights of a policy or work directory and where they came from.

    A policy directory has ``policy.safetensors``. A ``leo-train`` work directory has
    ``model/`` when it finished; otherwise its last stage's final weights or checkpoint,
    over stage 1's final weights (a checkpoint holds only what that stage trains).
    """
    from safetensors.torch import load_file
    for candidate in (directory, directory / 'model'):
        if (candidate / 'policy.safetensors').is_file():
            return load_file(str(candidate / 'policy.safetensors')), str(candidate)
    layers = [directory / 'stage1' / 'final.safetensors',
              directory / 'stage2' / 'checkpoint-model.safetensors',
              directory / 'stage2' / 'final.safetensors']
    found = [path for path in layers if path.is_file()]
    if not found:
        raise FileNotFoundError(f'{directory}: neither a policy directory (policy.safetensors)'
                                f' nor a leo-train work directory with finished stage 1')
    state = {}
    for path in found:
        state.update(load_file(str(path)))
    return state, ' + '.join(str(path) for path in found)


def encoder_directory(directory: Path) -> Path:
    """
    Return where a policy or ``leo-train`` work directory keeps its object encoder.

    A policy directory has ``classifier.safetensors``; a work directory has it in
    ``classifier/`` from its second step on (as :func:`latest_weights` reads either).
    """
    for candidate in (directory, directory / 'classifier'):
        if (candidate / 'classifier.safetensors').is_file():
            return candidate
    raise FileNotFoundError(f'{directory}: no object encoder (classifier.safetensors): '
                            'neither a policy directory nor a leo-train work directory that '
                            'pretrained one')


def build_stage_examples(config: TrainConfig, policy, records, root, log, progress) -> dict:
    """Return the examples of both stages (MiniLM states cached next to the data)."""
    from leo_ros.model.text_encoder import InstructionEncoder
    from leo_ros.train.dataset import build_examples, SceneCache
    observed = observed_stamp(config.data)
    text_encoder = InstructionEncoder(config.policy.scene.max_instruction_pieces, cache_size=0)
    cache_path = root / 'minilm_cache'
    text_encoder.load_cache(cache_path)
    scenes = {split: SceneCache(root, split, policy.object_encoder, observed)
              for split in ('train', 'val')}
    out = {}
    for split in ('train', 'val'):
        for stage, families in (('stage1', STAGE1_FAMILIES), ('stage2', STAGE2_FAMILIES)):
            chosen = [r for r in records[split] if r[1] in families]
            out[f'{stage}_{split}'] = build_examples(
                chosen, scenes[split], text_encoder, policy, progress,
                config.data.observed_fraction, config.seed)
    text_encoder.save_cache(cache_path)
    log({'stage': 'examples', **{k: len(v) for k, v in out.items()},
         'instructions_cached': len(text_encoder.cache), 'reworded_copies': records['reworded']})
    return out


def stage_mode(stage: StageConfig, policy) -> str:
    """Return how a stage trains the LM ('auto': the tiny LM fully in stage 1, else LoRA)."""
    if stage.llm != 'auto':
        return stage.llm
    return 'full' if stage.name == 'stage1' and policy.config.llm.built_here else 'lora'


def train_stage(policy, examples, stage: StageConfig, out_dir, log, config, progress):
    """Run a stage unless its final weights exist (a finished stage is not retrained)."""
    from safetensors.torch import load_file, save_file
    from leo_ros.model.checkpoint import trained_state
    from leo_ros.train.trainer import run_stage
    policy.set_llm_mode(stage_mode(stage, policy))
    done = Path(out_dir) / stage.name / 'final.safetensors'
    if done.is_file():
        policy.load_state_dict(load_file(str(done)), strict=False)
        log({'stage': stage.name, 'event': 'loaded finished stage'})
        return policy
    replay = examples['stage1_train'] if stage.name == 'stage2' and stage.replay > 0 else ()
    log({'stage': stage.name,
         'trainable': sum(p.numel() for p in policy.trainable_parameters())})
    policy = run_stage(policy, examples[f'{stage.name}_train'], examples[f'{stage.name}_val'],
                       stage, out_dir, log, seed=config.seed, progress=progress,
                       mixed_precision=config.mixed_precision, replay_examples=replay)
    save_file(trained_state(policy, lora=True), str(done))
    return policy


def save_model(policy, config: TrainConfig, out_dir, timings, log, command='') -> Path:
    """Write ``out_dir/model`` (the policy directory) and the curves."""
    from leo_ros.model.checkpoint import save_policy
    from leo_ros.train.plots import plot_curves
    model_dir = out_dir / 'model'
    if model_dir.exists():
        shutil.rmtree(model_dir)
    save_policy(policy, model_dir, extra={'training': config.to_dict(), 'timings_s': timings,
                                          'command': command})
    log({'stage': 'pipeline', 'event': 'saved', 'model': str(model_dir), 'timings_s': timings})
    plot_curves(out_dir / 'metrics.jsonl', out_dir / 'curves.png')
    return model_dir


def evaluate_trained(model_dir, config: TrainConfig, out_dir, episodes, phrasings, progress):
    """Evaluate a trained model: training wordings, each phrasings file, and perception."""
    from leo_ros.train.evaluate import evaluate_model, EvalConfig
    for phrasing in (None,) + tuple(phrasings):
        name = 'eval' if phrasing is None else f'eval-{Path(phrasing).stem}'
        evaluate_model(model_dir, EvalConfig(episodes=episodes, seed=config.seed,
                                             phrasings=phrasing,
                                             test_scenes=config.data.test_scenes),
                       out_dir / name, progress=progress)
    # the closed-loop families again, on the tokens perception keeps (as on the robot)
    evaluate_model(model_dir, EvalConfig(episodes=episodes, seed=config.seed,
                                         test_scenes=config.data.test_scenes,
                                         families=('nav', 'pick_place', 'qa'),
                                         tokens='perception'),
                   out_dir / 'eval-perception', progress=progress)
