"""
leo-eval: closed-loop evaluation of a trained policy in the built-in world (test-split scenes).

  leo-eval                                   (the shipped default model, 50 episodes per family)
  leo-eval --model out/leo-default/model --episodes 100 --seed 1
  leo-eval --phrasings config/phrasings_heldout.yaml   (instruction wordings not in training)

Writes eval.json, eval.md and eval.png into --out. The last line is
``nav_success=<f> pickplace_success=<f> qa_accuracy=<f>`` (fractions).
"""

import argparse
from pathlib import Path
import sys


def build_parser():
    parser = argparse.ArgumentParser(prog='leo-eval', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', help='model directory (default: the shipped default model)')
    parser.add_argument('--episodes', type=int, default=50, help='episodes per task family')
    parser.add_argument('--seed', type=int, default=0, help='seed of start poses and tasks')
    parser.add_argument('--phrasings', help='YAML templates file with instruction wordings '
                                            '(default: the training templates)')
    parser.add_argument('--test-scenes', type=int, default=50,
                        help='test-split scenes the episodes cycle through')
    parser.add_argument('--families', nargs='+', help='task families (default: all)')
    parser.add_argument('--tokens', choices=('world', 'perception'), default='world',
                        help="object tokens: 'world' (sampled on the meshes) or 'perception' "
                             '(the robot turns once at the start pose; the perception pipeline '
                             'segments the camera frames, as on the robot)')
    parser.add_argument('--out', default='out/eval', help='directory for eval.json/.md/.png')
    parser.add_argument('--lexicon', help='open vocabulary: replace category and colour '
                                          'words by the synonyms of this YAML file '
                                          '(config/open_vocabulary.yaml)')
    parser.add_argument('--device', default='auto', help="'auto', 'cpu', 'cuda', 'cuda:N'")
    parser.add_argument('--dtype', default='auto',
                        choices=('auto', 'float32', 'bfloat16', 'float16'))
    parser.add_argument('--grounding-probe', action='store_true',
                        help="also read the model's grounding head each episode and score it "
                             '(grounding_top1, qa_relation_grounding_accuracy)')
    parser.add_argument('--gate', action='store_true',
                        help="judge decisions with the agent's grounding gate, as leo-agent "
                             'does (a motion or answer about an object it does not see scores '
                             'as a refusal; gate_refusals counts)')
    parser.add_argument('--real', metavar='DIR',
                        help='instead: questions about the labelled real scans (*.pcd, mOSD '
                             'labels) of DIR, scored per kind (real_eval.json/.md/.png in '
                             '--out; docs/bags.md)')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.real:
        from leo_ros.real.evaluate import main_real
        return main_real(args.real, args.model, args.out, args.device, args.quiet)
    from leo_ros.model.loading import default_model_path
    from leo_ros.train.evaluate import (DEFAULT_FAMILIES, EvalConfig, evaluate_model,
                                        last_line, markdown_table)
    model = Path(args.model) if args.model else default_model_path()
    if not (model / 'config.json').is_file():
        print(f'leo-eval: no model at {model} (config.json missing)', file=sys.stderr)
        return 2
    if args.phrasings and not Path(args.phrasings).is_file():
        print(f'leo-eval: phrasings file {args.phrasings} not found', file=sys.stderr)
        return 2
    try:
        config = EvalConfig(episodes=args.episodes, seed=args.seed, phrasings=args.phrasings,
                            test_scenes=args.test_scenes, tokens=args.tokens,
                            grounding_probe=args.grounding_probe, lexicon=args.lexicon,
                            gate=args.gate,
                            device=args.device, dtype=args.dtype,
                            families=tuple(args.families) if args.families
                            else DEFAULT_FAMILIES)
    except ValueError as exc:
        print(f'leo-eval: {exc}', file=sys.stderr)
        return 2
    try:
        metrics = evaluate_model(model, config, args.out, progress=not args.quiet)
    except ValueError as exc:          # a model that cannot be loaded: one line says why
        print(f'leo-eval: {exc}', file=sys.stderr)
        return 2
    print(markdown_table([(model.name, metrics)]))
    print(f'wrote {args.out}/eval.json, eval.md, eval.png')
    print(last_line(metrics))
    return 0


if __name__ == '__main__':
    sys.exit(main())
