"""
leo-replay: play a ROS 2 bag (MCAP, as rosbag2 writes it) onto its topics, with /clock.

  leo-replay BAG.mcap                       every topic, recorded timing, /clock from the bag
  leo-replay BAG.mcap --inputs              only the agent's inputs (camera/*, odom, tf)
  leo-replay BAG.mcap --rate 2 --loop --start 5 --topics /camera/points /odom
  leo-replay BAG.mcap --remap /kinect/points:=/camera/points

Run the agent on it unchanged with simulated time: ``leo-agent --use-sim-time``. Topics whose
message type is not installed are skipped and counted; a truncated or corrupt bag plays what
could be read. The last line is ``published=N skipped=N ... realtime_factor=F``.
"""

import argparse
import sys

from leo_ros.bags.replay import AGENT_INPUTS, ReplayConfig


def build_parser():
    parser = argparse.ArgumentParser(prog='leo-replay', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('bag', help='an .mcap file (rosbag2 MCAP storage)')
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed (default 1)')
    parser.add_argument('--loop', action='store_true', help='play again at the end, until '
                        'Ctrl-C (/clock keeps running forward)')
    parser.add_argument('--start', type=float, default=0.0,
                        help='skip this many seconds at the start of the bag')
    parser.add_argument('--topics', nargs='+', default=[], metavar='TOPIC',
                        help='play only these topics (default: all but /clock)')
    parser.add_argument('--inputs', action='store_true',
                        help=f'play only the agent\'s inputs: {" ".join(AGENT_INPUTS)}')
    parser.add_argument('--remap', nargs='+', default=[], metavar='FROM:=TO',
                        help='publish a bag topic under another name')
    parser.add_argument('--delay', type=float, default=1.0,
                        help='seconds between creating the publishers and playing '
                             '(discovery; default 1)')
    parser.add_argument('--wait-for-subscribers', action='store_true',
                        help='start only once a played topic has a subscriber (at most 30 s), '
                             'then wait --delay')
    parser.add_argument('--no-clock', action='store_true', help='do not publish /clock')
    parser.add_argument('--clock-rate', type=float, default=100.0,
                        help='/clock messages per second (default 100)')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    topics = list(args.topics) + (list(AGENT_INPUTS) if args.inputs else [])
    try:
        config = ReplayConfig(rate=args.rate, loop=args.loop, start=args.start, topics=topics,
                              remaps=args.remap, delay=args.delay, clock=not args.no_clock,
                              clock_rate=args.clock_rate,
                              wait_for_subscribers=args.wait_for_subscribers)
    except ValueError as error:
        print(f'leo-replay: {error}', file=sys.stderr)
        return 2
    from leo_ros.nodes.replay_node import run_replay
    return run_replay(args.bag, config, progress=not args.quiet)


if __name__ == '__main__':
    sys.exit(main())
