"""
Ablations from the same pipeline (no ROS): one training run per variant, one evaluation each.

Variants change one thing of the base configuration:

- ``default``: the base configuration (grounded action tokens, both stages, pair geometry);
- ``no_stage1``: stage 2 only;
- ``no_pairwise``: no pairwise geometry in the spatial transformer (neither LEO's attention
  bias nor the relative geometry in the values);
- ``no_pair_values``: LEO's attention bias only (``policy.scene.pair_values`` off);
- ``no_grounding_loss``: no auxiliary grounding loss (``policy.scene.grounding_loss`` 0, and
  so no ``named_geometry`` and ``subject_head``, whose early head it trains);
- ``no_named_geometry``: object tokens do not get where the other named objects lie, nor
  which one the text is about (``policy.scene.named_geometry`` and ``subject_head`` off);
- ``bins``: uniform-bin coordinate tokens (robot frame) instead of grounded tokens;
- ``rvq``: residual-VQ coordinate tokens fitted on the expert demonstrations.

All variants share one dataset and one pretrained object encoder. A variant whose model and
evaluation are already in the output directory, made with the same configuration, is read back
instead of retrained, so variants can run as separate processes and one last call gathers the
table.
"""

import copy
import json
from pathlib import Path
import shutil

from leo_ros.train.evaluate import EvalConfig, evaluate_model, markdown_table, METRICS
from leo_ros.train.pipeline import run_pipeline, TrainConfig

VARIANTS = {
    'default': {},
    'no_stage1': {'skip_stage1': True},
    'no_pairwise': {'policy.scene.pairwise_geometry': False, 'policy.scene.pair_values': False},
    'no_pair_values': {'policy.scene.pair_values': False},
    'no_grounding_loss': {'policy.scene.grounding_loss': 0.0,
                          'policy.scene.named_geometry': False,
                          'policy.scene.subject_head': False},
    'no_named_geometry': {'policy.scene.named_geometry': False,
                          'policy.scene.subject_head': False},
    'bins': {'policy.action_mode': 'bins'},
    'rvq': {'policy.action_mode': 'rvq'},
}


def variant_config(base: TrainConfig, changes: dict) -> TrainConfig:
    """Return a copy of ``base`` with dotted-key ``changes`` applied."""
    data = base.to_dict()
    for key, value in changes.items():
        node = data
        parts = key.split('.')
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return TrainConfig.from_dict(copy.deepcopy(data))


def run_ablations(base: TrainConfig, out_dir, variants=None, episodes=30, progress=True,
                  data_dir=None, classifier_dir=None):
    """
    Train and evaluate every variant; write ablation.md, ablation.json and ablation.png.

    :param data_dir: dataset shared by the variants (default ``out_dir/data``)
    :param classifier_dir: a pretrained object encoder to share (default: the first variant's)
    :return: list of (variant, metrics)
    """
    from leo_ros.train.plots import plot_results
    out_dir = Path(out_dir)
    data_dir = Path(data_dir) if data_dir else out_dir / 'data'
    rows = []
    for name in variants or VARIANTS:
        if name not in VARIANTS:
            raise ValueError(f'unknown ablation variant {name!r}; known: {sorted(VARIANTS)}')
        config = variant_config(base, VARIANTS[name])
        run_dir = out_dir / name
        shared = Path(classifier_dir) if classifier_dir else out_dir / 'default' / 'classifier'
        if shared.is_dir() and not (run_dir / 'classifier').is_dir():
            run_dir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(shared, run_dir / 'classifier')
        metrics = finished_metrics(run_dir, config, episodes)
        if metrics is None:
            model_dir = run_pipeline(config, run_dir, data_dir, progress=progress)
            metrics = evaluate_model(model_dir, EvalConfig(episodes=episodes, seed=base.seed,
                                                           test_scenes=base.data.test_scenes),
                                     run_dir / 'eval', progress=progress, name=name)
        meta = json.loads((run_dir / 'model' / 'config.json').read_text())
        metrics['train_minutes'] = round(meta['timings_s']['total'] / 60, 1)
        rows.append((name, metrics))
    write_table(rows, out_dir, episodes, base)
    plot_results([(n, {k: v for k, v in m.items() if k in {x for x, _ in METRICS.values()}})
                  for n, m in rows], out_dir / 'ablation.png', 'ablations (closed loop, test)')
    return rows


def finished_metrics(run_dir, config: TrainConfig, episodes):
    """Return the metrics of a variant already trained and evaluated as asked, else None."""
    run_dir = Path(run_dir)
    evaluated, meta = run_dir / 'eval' / 'eval.json', run_dir / 'model' / 'config.json'
    if not (evaluated.is_file() and meta.is_file()):
        return None
    result = json.loads(evaluated.read_text())
    # the training configuration as given (the pipeline derives its own copies, never
    # writing into it)
    trained = json.loads(meta.read_text()).get('training', {})
    if trained != config.to_dict() or result['config']['episodes'] != episodes:
        return None
    return result['metrics']


def write_table(rows, out_dir, episodes, base):
    """Write ablation.md and ablation.json."""
    out_dir = Path(out_dir)
    (out_dir / 'ablation.json').write_text(json.dumps(
        {'episodes_per_family': episodes, 'variants': dict(rows),
         'base_config': base.to_dict()}, indent=2))
    minutes = ', '.join(f'{n}: {m.get("train_minutes", "?")} min' for n, m in rows)
    (out_dir / 'ablation.md').write_text(
        '# Ablations (closed-loop, test-split scenes)\n\n'
        f'{episodes} episodes per family and variant; training steps: stage 1 '
        f'{base.stage1.steps}, stage 2 {base.stage2.steps}. Training time: {minutes}.\n\n'
        + markdown_table(rows) + '\n')
