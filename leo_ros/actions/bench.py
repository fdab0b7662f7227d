"""
leo-bench actions: error and tokens per action of the continuous action tokenizers.

Trains the residual-VQ tokenizer on sampled demonstrations (``sample_action_arrays``: uniform
over the workspace, the law of ``sample_demonstrations``), then round-trips held-out
demonstrations (another seed) through it and through uniform binning. The binning resolution
is chosen to match the targets: the coarsest grid whose p95 errors on the *training*
demonstrations meet them, so binning is compared at the same error, not at an arbitrary bin
count. Last line::

    pos_err_p95_cm= yaw_err_p95_deg= tokens_per_action= bins_pos_err_p95_cm= ...
"""

import argparse
import math
from pathlib import Path
import time

from leo_ros.actions.tokenizers import BinConfig, BinTokenizer, RvqConfig, RvqTokenizer
from leo_ros.actions.workspace import position_yaw_errors, sample_action_arrays
import numpy as np


def evaluate(tokenizer, arrays) -> dict:
    """
    Round-trip every kind's values and measure errors.

    :param arrays: ``{kind: (N, D)}``
    :return: ``{kind: {'pos': (N,) m, 'yaw': (N,) rad, 'tokens': int}}``
    """
    results = {}
    for kind, values in arrays.items():
        decoded = tokenizer.decode_values(kind, tokenizer.encode_values(kind, values))
        pos, yaw = position_yaw_errors(kind, values, decoded)
        results[kind] = {'pos': pos, 'yaw': yaw, 'tokens': tokenizer.tokens_per_action(kind)}
    return results


def summarise(results) -> tuple:
    """Return pooled p95 position error [cm], p95 yaw error [deg], mean tokens per action."""
    pos = np.concatenate([r['pos'] for r in results.values()])
    yaw = np.concatenate([r['yaw'] for r in results.values()])
    tokens = np.concatenate([np.full(len(r['pos']), r['tokens']) for r in results.values()])
    return (float(np.percentile(pos, 95) * 100), float(np.degrees(np.percentile(yaw, 95))),
            float(tokens.mean()))


def match_bins(arrays, pos_target_cm, yaw_target_deg) -> BinTokenizer:
    """Return the coarsest binning whose p95 errors on ``arrays`` meet both targets."""
    position_resolution, yaw_resolution = None, None
    for width_cm in np.arange(4.0, 0.05, -0.05):
        candidate = BinTokenizer(BinConfig(position_resolution=width_cm / 100,
                                           yaw_resolution=math.radians(45)))
        if summarise(evaluate(candidate, arrays))[0] <= pos_target_cm:
            position_resolution = width_cm / 100
            break
    for width_deg in np.arange(10.0, 0.1, -0.1):
        candidate = BinTokenizer(BinConfig(position_resolution=position_resolution,
                                           yaw_resolution=math.radians(width_deg)))
        if summarise(evaluate(candidate, arrays))[1] <= yaw_target_deg:
            yaw_resolution = math.radians(width_deg)
            break
    return BinTokenizer(BinConfig(position_resolution=position_resolution,
                                  yaw_resolution=yaw_resolution))


def plot(results_by_name, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, results in results_by_name.items():
        pos = np.sort(np.concatenate([r['pos'] for r in results.values()])) * 100
        yaw = np.sort(np.degrees(np.concatenate([r['yaw'] for r in results.values()])))
        quantiles = np.linspace(0, 1, len(pos))
        axes[0].plot(pos, quantiles, label=name)
        axes[1].plot(yaw, quantiles, label=name)
    axes[0].set_xlabel('position error [cm]')
    axes[1].set_xlabel('yaw error [deg]')
    for axis in axes:
        axis.set_ylabel('fraction of held-out actions')
        axis.axhline(0.95, color='grey', linestyle=':')
        axis.legend()
    figure.suptitle('action tokenizer round-trip error (held-out demonstrations)')
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='leo-bench actions', description=__doc__.split('\n')[1])
    parser.add_argument('--train', type=int, default=200000,
                        help='training demonstrations per action kind')
    parser.add_argument('--test', type=int, default=5000,
                        help='held-out demonstrations per action kind')
    parser.add_argument('--codebook-size', type=int, default=RvqConfig.codebook_size)
    parser.add_argument('--steps', type=int, default=RvqConfig.train_steps)
    parser.add_argument('--pos-target-cm', type=float, default=1.0)
    parser.add_argument('--yaw-target-deg', type=float, default=2.0)
    parser.add_argument('--out', default='out/bench/actions', help='folder for PNG and tokenizer')
    args = parser.parse_args(argv)

    import torch
    torch.set_num_threads(1)  # the machine is shared; one thread is what the numbers assume
    train = sample_action_arrays(args.train, rng=np.random.default_rng(0))
    test = sample_action_arrays(args.test, rng=np.random.default_rng(1))
    started = time.perf_counter()
    rvq = RvqTokenizer(RvqConfig(codebook_size=args.codebook_size, train_steps=args.steps))
    rvq.fit(train)
    fit_s = time.perf_counter() - started
    bins = match_bins(train, args.pos_target_cm, args.yaw_target_deg)
    results = {'rvq': evaluate(rvq, test), 'bins': evaluate(bins, test)}

    print(f'rvq: codebook {args.codebook_size}, fitted in {fit_s:.1f} s on '
          f'{sum(len(v) for v in train.values())} actions; bins: position '
          f'{bins.config.position_resolution * 100:.2f} cm, yaw '
          f'{math.degrees(bins.config.yaw_resolution):.2f} deg (matched on training actions), '
          f'vocabulary {len(bins.vocabulary())}')
    print(f'{"tokenizer":10s}{"kind":12s}{"pos p95 cm":>12s}{"yaw p95 deg":>13s}{"tokens":>8s}')
    for name, per_kind in results.items():
        for kind, r in per_kind.items():
            print(f'{name:10s}{kind:12s}{np.percentile(r["pos"], 95) * 100:12.3f}'
                  f'{np.degrees(np.percentile(r["yaw"], 95)):13.3f}{r["tokens"]:8d}')
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(results, out / 'action_tokenizers.png')
    rvq.save(out / 'rvq_tokenizer')
    print(f'figure: {out / "action_tokenizers.png"}; tokenizer: {out / "rvq_tokenizer"}')
    pos, yaw, tokens = summarise(results['rvq'])
    bins_pos, bins_yaw, bins_tokens = summarise(results['bins'])
    print(f'pos_err_p95_cm={pos:.3f} yaw_err_p95_deg={yaw:.3f} tokens_per_action={tokens:.2f} '
          f'bins_pos_err_p95_cm={bins_pos:.3f} bins_yaw_err_p95_deg={bins_yaw:.3f} '
          f'bins_tokens_per_action={bins_tokens:.2f}')
    return 0
