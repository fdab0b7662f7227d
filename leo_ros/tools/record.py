"""
leo-record: record the agent's inputs and outputs into a ROS 2 bag (one MCAP file).

  leo-record OUT.mcap                      the agent's inputs and outputs (below)
  leo-record OUT.mcap /camera/points /odom only these topics
  leo-record OUT.mcap --all --exclude /leo/segmented_points
  leo-agent --sim --record OUT.mcap        the same, started with the agent

The file is what rosbag2's MCAP storage writes (profile ros2, cdr messages, ros2msg schemas,
rosbag2 metadata): ``ros2 bag info/play`` and Foxglove open it, and ``leo-replay`` plays it.
Ctrl-C stops and closes it. The last line is ``messages=N topics=N dropped=N ...``.
"""

import argparse
import sys

from leo_ros.bags.record import DEFAULT_TOPICS, RecordConfig


def build_parser():
    parser = argparse.ArgumentParser(prog='leo-record', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out', help='output .mcap file')
    parser.add_argument('topics', nargs='*', metavar='TOPIC',
                        help=f'topics (default: {" ".join(DEFAULT_TOPICS)})')
    parser.add_argument('--all', action='store_true', help='every topic that appears')
    parser.add_argument('--exclude', nargs='+', default=[], metavar='TOPIC',
                        help='never record these topics')
    parser.add_argument('--compression', choices=('none', 'zstd', 'lz4'), default='none',
                        help='chunk compression (default none, as rosbag2)')
    parser.add_argument('--duration', type=float, default=0.0,
                        help='stop after this many seconds (default: until Ctrl-C)')
    parser.add_argument('--use-sim-time', action='store_true',
                        help='stamp messages with /clock instead of the system clock')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing file')
    parser.add_argument('--quiet', action='store_true', help='no progress line')
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ros_args = None
    if '--ros-args' in argv:                # namespace and remaps, as for a node
        at = argv.index('--ros-args')
        argv, ros_args = argv[:at], ['leo-record'] + argv[at:]
    args = build_parser().parse_args(argv)
    try:
        config = RecordConfig(path=args.out, topics=tuple(args.topics) or DEFAULT_TOPICS,
                              all_topics=args.all, exclude=tuple(args.exclude),
                              compression=args.compression, max_duration=args.duration,
                              overwrite=args.overwrite)
    except ValueError as error:
        print(f'leo-record: {error}', file=sys.stderr)
        return 2
    from leo_ros.nodes.record_node import run_record
    return run_record(config, progress=not args.quiet, use_sim_time=args.use_sim_time,
                      ros_args=ros_args)


if __name__ == '__main__':
    sys.exit(main())
