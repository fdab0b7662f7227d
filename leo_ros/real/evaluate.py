"""
``leo-eval --real DIR``: questions about labelled real scans, scored per kind (no ROS).

Every ``*.pcd`` of DIR with a ``label`` field is perceived as the robot would (geometric
segmentation, estimated camera pose, the model's object labels; never the labels), asked the
questions its labels support (:mod:`leo_ros.real.questions`), and each answer is scored. A
second pass takes the objects from the labels instead of the segmentation (same pose, same
questions): the gap between the two is what perception costs.
Writes ``real_eval.json`` (every question and answer), ``real_eval.md`` and ``real_eval.png``.
"""

from dataclasses import asdict
import json
from pathlib import Path
import re
import sys
import time

from leo_ros.real.questions import (FIRST_OBJECT_LABEL, is_right, KINDS, QuestionConfig,
                                    questions, real_objects)
from leo_ros.real.scan import load_scan, ScanError
import numpy as np


def scan_files(directory):
    """Return the PCD files of a directory in natural order (learn2 before learn10)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f'no directory {directory}')

    def key(path):
        return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', path.name)]
    return sorted(directory.glob('*.pcd'), key=key)


def label_instances(labels) -> np.ndarray:
    """Return mOSD labels as instance ids: objects label // 10, the table 0, nothing -1."""
    labels = np.asarray(labels).astype(np.int64)
    return np.where(labels >= FIRST_OBJECT_LABEL, labels // 10, np.where(labels >= 1, 0, -1))


def evaluate_scans(directory, agent, progress=True, config: QuestionConfig = None,
                   objects_from='perception'):
    """
    Ask and score every question of every labelled scan in ``directory``.

    :param agent: a :class:`~leo_ros.real.ask.ScanAgent`
    :param objects_from: 'perception' (geometric segmentation, as on the robot) or 'labels'
        (the labelled objects: what the answers would be with a perfect segmentation)
    :return: dict with ``records`` (one per question), ``skipped`` (file -> why) and
        ``metrics`` (per kind: accuracy, right, asked)
    """
    from tqdm import tqdm
    config = config or QuestionConfig()
    files = scan_files(directory)
    records, skipped, scenes = [], {}, []
    for path in tqdm(files, desc=f'leo-eval --real ({objects_from})', file=sys.stderr,
                     disable=not progress):
        try:
            scan = load_scan(path)
            if scan.labels is None or not scan.organized:
                raise ScanError('no per-point label field in an organised cloud')
            objects, _ = real_objects(scan.xyz, scan.rgb, scan.labels, config)
            start = time.perf_counter()
            perceived = agent.perceive(scan, instances=label_instances(scan.labels)
                                       if objects_from == 'labels' else None)
            perceive_s = time.perf_counter() - start
        except (ScanError, ValueError) as error:
            skipped[path.name] = str(error)
            continue
        scenes.append({'scan': path.name, 'objects_labelled': len(objects),
                       'objects_perceived': len(perceived.tokens),
                       'perceived_labels': list(perceived.tokens.labels),
                       'pose': perceived.pose_source, 'perceive_s': perceive_s})
        for question in questions(objects, config):
            answer = agent.ask(scan, question.text, perceived=perceived)
            records.append({'scan': path.name, 'kind': question.kind, 'question': question.text,
                            'expected': question.answer, 'answer': answer.text,
                            'right': is_right(question, answer.text),
                            'accept': list(question.accept)})
    return {'records': records, 'skipped': skipped, 'scenes': scenes, 'objects': objects_from,
            'metrics': metrics(records), 'config': asdict(config)}


def metrics(records) -> dict:
    """Return per kind (and 'all') the accuracy, right answers and questions asked."""
    out = {}
    for kind in KINDS + ('all',):
        chosen = [r for r in records if kind == 'all' or r['kind'] == kind]
        right = sum(r['right'] for r in chosen)
        out[kind] = {'accuracy': right / len(chosen) if chosen else float('nan'),
                     'right': right, 'asked': len(chosen)}
    return out


def markdown(result, name='') -> str:
    """Return the per-kind table, the scenes and every question as markdown."""
    oracle = result.get('labelled_objects', {}).get('metrics')
    lines = [f'# Real-scan questions{": " + name if name else ""}', '',
             '| kind | accuracy | right / asked | with the labelled objects |',
             '| --- | --- | --- | --- |']
    for kind, value in result['metrics'].items():
        other = f'{oracle[kind]["accuracy"]:.2f} ({oracle[kind]["right"]} / ' \
            f'{oracle[kind]["asked"]})' if oracle else ''
        lines.append(f'| {kind} | {value["accuracy"]:.2f} | {value["right"]} / '
                     f'{value["asked"]} | {other} |')
    lines += ['', '| scan | objects labelled | objects perceived | perceived labels |',
              '| --- | --- | --- | --- |']
    for scene in result['scenes']:
        lines.append(f'| {scene["scan"]} | {scene["objects_labelled"]} | '
                     f'{scene["objects_perceived"]} | {", ".join(scene["perceived_labels"])} |')
    lines += ['', '| scan | kind | question | expected | answer | right |',
              '| --- | --- | --- | --- | --- | --- |']
    for r in result['records']:
        lines.append(f'| {r["scan"]} | {r["kind"]} | {r["question"]} | {r["expected"]} | '
                     f'{r["answer"]} | {"yes" if r["right"] else "no"} |')
    for scan, why in result['skipped'].items():
        lines.append(f'\nskipped {scan}: {why}')
    return '\n'.join(lines) + '\n'


def last_line(result) -> str:
    """Return ``count=F tallest_color=F exists=F left_of=F all=F labelled_all=F scans=N ...``."""
    values = ' '.join(f'{kind}={value["accuracy"]:.3f}'
                      for kind, value in result['metrics'].items())
    oracle = result.get('labelled_objects', {}).get('metrics')
    if oracle:
        values += f' labelled_all={oracle["all"]["accuracy"]:.3f}'
    return f'{values} scans={len(result["scenes"])} skipped={len(result["skipped"])}'


def save(result, out, name=''):
    """Write real_eval.json, real_eval.md and real_eval.png into ``out``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'real_eval.json').write_text(json.dumps(result, indent=2, default=float))
    (out / 'real_eval.md').write_text(markdown(result, name))
    kinds = list(KINDS)
    variants = [('perception', result['metrics'])]
    if result.get('labelled_objects'):
        variants.append(('labelled objects', result['labelled_objects']['metrics']))
    figure, axis = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(variants)
    for k, (label, values) in enumerate(variants):
        where = np.arange(len(kinds)) + (k - (len(variants) - 1) / 2) * width
        heights = [np.nan_to_num(values[kind]['accuracy']) for kind in kinds]
        axis.bar(where, heights, width, label=label)
        for x, kind, height in zip(where, kinds, heights):
            axis.text(x, height + 0.02, f'{values[kind]["right"]}/{values[kind]["asked"]}',
                      ha='center', fontsize=8)
    axis.set_xticks(np.arange(len(kinds)), kinds)
    axis.set_ylim(0, 1.15)
    axis.set_ylabel('accuracy')
    axis.legend(fontsize=8)
    axis.set_title(f'real-scan questions {name}'.strip())
    figure.tight_layout()
    figure.savefig(out / 'real_eval.png', dpi=100)
    plt.close(figure)


def main_real(directory, model=None, out='out/eval-real', device=None, quiet=False) -> int:
    """Run the evaluation for ``leo-eval --real DIR``; print the table and the last line."""
    from leo_ros.real.ask import ScanAgent
    try:
        files = scan_files(directory)
    except FileNotFoundError as error:
        print(f'leo-eval: {error}', file=sys.stderr)
        return 2
    if not files:
        print(f'leo-eval: no .pcd files in {directory}', file=sys.stderr)
        return 2
    agent = ScanAgent(model, device=device)
    try:
        agent.policy
    except (OSError, ValueError) as error:
        print(f'leo-eval: cannot load the policy: {error}', file=sys.stderr)
        return 2
    result = evaluate_scans(directory, agent, progress=not quiet)
    oracle = evaluate_scans(directory, agent, progress=not quiet, objects_from='labels')
    result['labelled_objects'] = {k: oracle[k] for k in ('metrics', 'records', 'scenes')}
    result['model'] = str(model or 'default')
    result['notes'] = agent.notes
    save(result, out, Path(str(model or 'default')).name)
    print('\n\n'.join(markdown(result).split('\n\n')[:2]))
    for scan, why in result['skipped'].items():
        print(f'skipped {scan}: {why}')
    print(f'wrote {out}/real_eval.json, real_eval.md, real_eval.png')
    print(last_line(result))
    return 0
