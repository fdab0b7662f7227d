"""PNG figures of training curves and evaluation results (matplotlib, headless)."""

import json
from pathlib import Path


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def read_metrics(path) -> list:
    """Return the lines of a JSONL metrics log."""
    lines = []
    with open(path, encoding='utf-8') as handle:
        for line in handle:
            line = line.strip()
            if line:
                lines.append(json.loads(line))
    return lines


def plot_curves(metrics_path, out_path):
    """Plot training and validation loss and token accuracy per stage into one PNG."""
    plt = _pyplot()
    lines = read_metrics(metrics_path)
    stages = [s for s in ('stage1', 'stage2') if any(m.get('stage') == s for m in lines)]
    fig, axes = plt.subplots(2, max(len(stages), 1), figsize=(6 * max(len(stages), 1), 7),
                             squeeze=False)
    for column, stage in enumerate(stages):
        train = [m for m in lines if m.get('stage') == stage and 'loss' in m]
        val = [m for m in lines if m.get('stage') == stage and 'val_loss' in m]
        top, bottom = axes[0][column], axes[1][column]
        top.plot([m['step'] for m in train], [m['loss'] for m in train], label='train')
        top.plot([m['step'] for m in val], [m['val_loss'] for m in val], 'o-', label='val')
        top.set_yscale('log')
        top.set_title(f'{stage}: loss')
        top.legend()
        bottom.plot([m['step'] for m in train], [m['token_accuracy'] for m in train],
                    label='train')
        bottom.plot([m['step'] for m in val], [m['val_token_accuracy'] for m in val], 'o-',
                    label='val')
        bottom.set_title(f'{stage}: answer token accuracy')
        bottom.set_xlabel('step')
        bottom.set_ylim(0, 1)
        bottom.legend()
    fig.tight_layout()
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=90)
    plt.close(fig)


def plot_results(rows, out_path, title):
    """
    Bar chart of metrics per run.

    :param rows: list of (run name, {metric: fraction})
    """
    plt = _pyplot()
    metrics = list(dict.fromkeys(k for _, values in rows for k in values))
    fig, axis = plt.subplots(figsize=(max(6, 1.6 * len(metrics) * max(len(rows), 1) / 2), 4))
    width = 0.8 / max(len(rows), 1)
    for number, (name, values) in enumerate(rows):
        xs = [i + number * width for i in range(len(metrics))]
        axis.bar(xs, [values.get(m, 0.0) or 0.0 for m in metrics], width, label=name)
    axis.set_xticks([i + width * (len(rows) - 1) / 2 for i in range(len(metrics))])
    axis.set_xticklabels(metrics, rotation=20, ha='right')
    axis.set_ylim(0, 1.05)
    axis.set_title(title)
    axis.legend(fontsize=8)
    fig.tight_layout()
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=90)
    plt.close(fig)
