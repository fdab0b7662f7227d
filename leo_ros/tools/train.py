"""
leo-train: the whole training pipeline from one YAML config.

  leo-train --config config/train_default.yaml --out out/leo-default
  leo-train --out out/tiny --set stage1.steps=20 --set stage2.steps=20   (overrides)
  leo-train --llm smollm2-135m --dtype bfloat16 --out out/smollm2     (the pretrained LM)
  leo-train --llm /models/vicuna-7b --device cuda --dtype bfloat16 --out out/7b
  leo-train --out out/leo-default --install models/leo-default            (ship the result)
  leo-train --out out/ablations --ablations --eval-episodes 30             (ablation table)

Steps: data (leo-data splits) -> object-encoder pretraining -> action tokenizer (RVQ fit when
used) -> stage 1 (3D-language alignment) -> stage 2 (instruction tuning with actions, LoRA) ->
model directory, metrics.jsonl, curves.png -> optional evaluation (--eval-episodes).
Re-running the same command resumes: finished steps are skipped, stages continue from their
last checkpoint.
"""

import argparse
import json
from pathlib import Path
import shutil
import sys

import yaml


def _apply_override(data, text):
    if '=' not in text:
        raise ValueError(f'--set needs KEY=VALUE, got {text!r}')
    key, value = text.split('=', 1)
    node = data
    parts = key.split('.')
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = yaml.safe_load(value)


def build_parser():
    parser = argparse.ArgumentParser(prog='leo-train', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', help='training YAML (default: config/train_default.yaml '
                                         'of the package, else built-in defaults)')
    parser.add_argument('--out', help='work directory (model/, metrics, plots)')
    parser.add_argument('--data', help='dataset directory (default OUT/data)')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='override a config value, e.g. stage2.steps=500')
    parser.add_argument('--llm', help="backbone: 'tiny', 'smollm2-135m', a Hugging Face "
                                      'directory or a .gguf file (policy.llm.source)')
    parser.add_argument('--device', help="torch device: 'cpu', 'cuda', 'cuda:N' "
                                         '(policy.llm.device)')
    parser.add_argument('--dtype', choices=('float32', 'bfloat16', 'float16'),
                        help='LM weights (policy.llm.dtype); the encoders stay float32')
    parser.add_argument('--init-from', help='start the encoders and heads from this trained '
                                            'policy directory, or the latest weights of a '
                                            'leo-train work directory (init_from)')
    parser.add_argument('--eval-episodes', type=int, default=0,
                        help='evaluate the result with this many episodes per family')
    parser.add_argument('--phrasings', action='append', default=[],
                        help='also evaluate with this phrasings file (repeatable)')
    parser.add_argument('--install', help='copy the model, its log, curves and evaluation '
                                          'into this directory (e.g. models/leo-default)')
    parser.add_argument('--ablations', nargs='*', metavar='VARIANT',
                        help='train and evaluate ablation variants (default: all of '
                             'default, no_stage1, no_pairwise, no_pair_values, '
                             'no_grounding_loss, no_named_geometry, bins, rvq)')
    parser.add_argument('--classifier', help='ablations: share this pretrained object encoder '
                                             '(a directory with classifier.json)')
    parser.add_argument('--memory', action='store_true',
                        help='print the estimated accelerator memory of training the configured '
                             'backbone (LoRA, AdamW) per batch size, and exit; --llm llama-7b '
                             "gives LEO's 7B sizes")
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: default)')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    return parser


def read_config(path) -> dict:
    """
    Read a training YAML; a ``base:`` file (relative to it) is read first and updated.

    Nested mappings merge key by key, so a backbone's file only says what differs.
    """
    path = Path(path)
    with open(path, encoding='utf-8') as handle:
        data = yaml.safe_load(handle) or {}
    base = data.pop('base', None)
    if not base:
        return data
    return _merge(read_config(path.parent / base), data)


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = _merge(merged[key], value)
        merged[key] = value
    return merged


def default_config_path():
    """Return the repository's config/train_default.yaml if present."""
    path = Path(__file__).resolve().parents[2] / 'config' / 'train_default.yaml'
    return path if path.is_file() else None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    from leo_ros.train.pipeline import run_pipeline, TrainConfig
    config_path = args.config or default_config_path()
    data = read_config(config_path) if config_path else {}
    options = {'policy.llm.source': args.llm, 'policy.llm.device': args.device,
               'policy.llm.dtype': args.dtype, 'init_from': args.init_from}
    try:
        for text in args.set + [f'{k}={v}' for k, v in options.items() if v]:
            _apply_override(data, text)
        config = TrainConfig.from_dict(data)
    except (ValueError, TypeError) as exc:
        print(f'leo-train: bad configuration: {exc}', file=sys.stderr)
        return 2
    if args.memory:
        return print_memory(config)
    if not args.out:
        print('leo-train: --out is required', file=sys.stderr)
        return 2
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    if args.ablations is not None:
        from leo_ros.train.ablation import run_ablations
        from leo_ros.train.evaluate import markdown_table
        rows = run_ablations(config, args.out, args.ablations or None,
                             episodes=args.eval_episodes or 30, progress=not args.quiet,
                             data_dir=args.data, classifier_dir=args.classifier)
        print(markdown_table(rows))
        print(f'wrote {args.out}/ablation.md, ablation.json, ablation.png')
        return 0
    model_dir = run_pipeline(config, args.out, args.data, progress=not args.quiet,
                             evaluate_episodes=args.eval_episodes, phrasings=args.phrasings,
                             command=' '.join(argv))
    out = Path(args.out)
    if args.install:
        install(out, model_dir, Path(args.install))
        print(f'installed {args.install}')
    meta = json.loads((model_dir / 'config.json').read_text())
    print(f'model={model_dir} total_s={meta["timings_s"]["total"]}')
    return 0


def print_memory(config) -> int:
    """Print memory estimates of training the configured backbone (leo_ros.train.memory)."""
    from leo_ros.train.memory import estimate, table
    llm = config.policy.llm
    if llm.source == 'tiny':
        print('leo-train --memory: the tiny backbone needs no accelerator; name one with --llm')
        return 2
    for checkpointing in (False, True):
        rows = estimate(llm.source, llm.dtype, llm.lora_r, llm.lora_targets,
                        checkpointing=checkpointing)
        print(table(rows, f'{llm.source}, {llm.dtype}, LoRA r{llm.lora_r}, gradient '
                          f'checkpointing {"on" if checkpointing else "off"} [GiB, estimate]'))
        print()
    return 0


#: made by their own commands (``--ablations``), so a reinstall keeps them
KEPT_ON_INSTALL = ('ablation',)


def install(out, model_dir, target):
    """
    Copy a trained model with its metrics log, curves and evaluations into ``target``.

    What was there is replaced, except the directories in ``KEPT_ON_INSTALL``.
    """
    if target.exists():
        for entry in target.iterdir():
            if entry.name not in KEPT_ON_INSTALL:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.copytree(model_dir, target, dirs_exist_ok=True)
    for name in ('metrics.jsonl', 'curves.png', 'train_config.json'):
        if (out / name).is_file():
            shutil.copy(out / name, target / name)
    for evaluation in sorted(out.glob('eval*')):
        if evaluation.is_dir():
            shutil.copytree(evaluation, target / evaluation.name)
    write_model_card(target)


def write_model_card(target):
    """Write README.md beside an installed model: how it was made and how it scores."""
    meta = json.loads((target / 'config.json').read_text())
    policy, training = meta['policy'], meta.get('training', {})
    llm = policy['llm']
    backbone = f'{llm["source"]} ({llm["dtype"]})' if llm['source'] != 'tiny' else \
        f'tiny LLaMA {llm["layers"]} layers x {llm["hidden_size"]} (trained here)'
    lines = ['# leo_ros default model', '',
             'Trained in the built-in world by the pipeline (docs/training.md):', '',
             '```', 'leo-train ' + meta.get('command', ''), '```', '',
             f'- LM: {backbone}; LoRA r{llm["lora_r"]} ({", ".join(llm["lora_targets"])}); '
             f'action tokens: {policy["action_mode"]}',
             f'- data: {training.get("data", {}).get("train_scenes", "?")} training scenes; '
             f'stage 1 {training.get("stage1", {}).get("steps", "?")} steps, stage 2 '
             f'{training.get("stage2", {}).get("steps", "?")} steps',
             f'- step timings [s]: {json.dumps(meta.get("timings_s", {}))}',
             '- files: config.json, policy.safetensors, tokenizer/, adapter/ (LoRA, peft '
             'format), classifier.*, grounded.json; metrics.jsonl (training log), curves.png; '
             'eval*/ (closed-loop evaluation on test-split scenes)', '']
    for evaluation in sorted(target.glob('eval*/eval.md')):
        lines += [f'## {evaluation.parent.name}', '']
        lines += evaluation.read_text().splitlines()[2:]
        lines.append('')
    (target / 'README.md').write_text('\n'.join(lines))


if __name__ == '__main__':
    sys.exit(main())
