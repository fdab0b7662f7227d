"""
leo-ask: answer a question about one point cloud file with the policy.

  leo-ask SCAN.pcd "how many objects are on the table?"
  leo-ask SCAN.pcd "what color is the tallest object?" --pose 0,0,1.6,0.65,-0.65,0.27,-0.27
  leo-ask SCAN.pcd "is there a box?" --model out/leo-default/model --png out/scan.png

The scan is segmented as perception_node would; without ``--pose`` (the camera optical
frame in the map: x,y,z,qx,qy,qz,qw) "up" is the normal of the dominant plane, taken to be a
table top 0.75 m high (the floor when it is over 1.5 m away): docs/bags.md, "Single scans".
Prints the answer, what the agent saw, and ``kind=... objects=N pose=...`` as the last line.
"""

import argparse
import sys


def build_parser():
    parser = argparse.ArgumentParser(prog='leo-ask', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('scan', help='a PCD file (ascii, binary, binary_compressed)')
    parser.add_argument('question', help='the instruction or question')
    parser.add_argument('--pose', help='camera optical frame in the map: x,y,z,qx,qy,qz,qw '
                                       '(default: estimated from the dominant plane)')
    parser.add_argument('--model', help='policy directory (default: the shipped model)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda, cuda:N')
    parser.add_argument('--dtype', default='auto', help='auto, float32, bfloat16, float16')
    parser.add_argument('--png', help='also save the segmented scan as a PNG here')
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from leo_ros.real.scan import load_scan, pose_from_text, ScanError
    try:
        pose = pose_from_text(args.pose) if args.pose else None
        scan = load_scan(args.scan)
    except (ScanError, ValueError) as error:
        print(f'leo-ask: {error}', file=sys.stderr)
        return 2
    if not args.question.strip():
        print('leo-ask: the question is empty', file=sys.stderr)
        return 2
    from leo_ros.real.ask import ScanAgent
    agent = ScanAgent(args.model, device=args.device, dtype=args.dtype)
    try:
        perceived = agent.perceive(scan, pose)     # bad scans fail before the model loads
    except ScanError as error:
        print(f'leo-ask: {error}', file=sys.stderr)
        return 2
    try:
        agent.policy
    except (OSError, ValueError) as error:       # missing or unloadable model directory
        print(f'leo-ask: cannot load the policy: {error}', file=sys.stderr)
        return 2
    answer = agent.ask(scan, args.question, perceived=perceived)
    perceived = answer.perceived
    tokens = perceived.tokens
    print(f'Q: {args.question}\nA: {answer.text}')
    print(f'scan {scan.name}: {scan.valid_points} valid points, {len(tokens)} objects: '
          + ', '.join(f'{label} at ({c[0]:.2f}, {c[1]:.2f}, {c[2]:.2f}) '
                      f'{s[2] * 100:.0f} cm high'
                      for label, c, s in zip(tokens.labels, tokens.centers, tokens.sizes)))
    print(f'camera pose: {perceived.pose_source}')
    for note in answer.notes:
        print(f'note: {note}')
    if args.png:
        save_png(args.png, perceived, answer)
        print(f'wrote {args.png}')
    action = getattr(answer.decision, 'action', None)
    if action is not None:
        print(f'action: {action}')
    kind = getattr(answer.decision, 'kind', '')
    source = 'given' if perceived.pose_source == 'given' else 'estimated'
    print(f'kind={kind} objects={len(tokens)} pose={source} ok={answer.ok}')
    return 0 if answer.ok else 1


def save_png(path, perceived, answer):
    """Write the scan's colours with each object's label beside the question and answer."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from leo_ros.tools.segment import label_colors
    import numpy as np
    scan = perceived.scan
    labels = perceived.segmentation.labels
    figure, axis = plt.subplots(figsize=(8, 6.5))
    if scan.organized:
        axis.imshow(np.clip(label_colors(labels, scan.rgb), 0, 1))
        for k, indices in enumerate(perceived.segmentation.object_indices()):
            rows, cols = np.unravel_index(indices, labels.shape)
            axis.text(cols.mean(), rows.mean(), perceived.tokens.labels[k], color='white',
                      fontsize=9, ha='center', bbox={'facecolor': 'black', 'alpha': 0.5})
    else:
        finite = np.isfinite(scan.xyz).all(axis=1)
        axis.scatter(scan.xyz[finite, 0], scan.xyz[finite, 1],
                     c=label_colors(labels)[finite], s=0.5)
    axis.set_title(f'Q: {answer.question}\nA: {answer.text}', fontsize=10)
    axis.axis('off')
    figure.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(figure)


if __name__ == '__main__':
    sys.exit(main())
