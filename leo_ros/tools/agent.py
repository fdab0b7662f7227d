"""
leo-agent: start the agent's nodes as processes, from the same description as agent.launch.py.

``ros2 launch`` is not installable from the ROS wheels, so this runner reads
leo_ros.agent.node_set (which the launch file reads too) and starts each node with the same
``--ros-args``. ``--sim`` also starts the built-in world. Ctrl-C stops everything; if a node
dies, the others are stopped and the exit status is 1.
"""

import argparse
from dataclasses import fields
import os
from pathlib import Path
import shutil
import signal
import sys
import time

from leo_ros.agent.node_set import agent_nodes, AgentArguments, NodeSpec, ros_arguments


def build_parser():
    """Return the argument parser: one option per AgentArguments field."""
    parser = argparse.ArgumentParser(prog='leo-agent', description=__doc__.strip().split('\n')[0])
    defaults = AgentArguments()
    for spec in fields(AgentArguments):
        option = '--' + spec.name.replace('_', '-')
        default = getattr(defaults, spec.name)
        if isinstance(default, bool):
            parser.add_argument(option, action='store_true', help=f'(launch: {spec.name})')
        else:
            parser.add_argument(option, default=default, help=f'(launch: {spec.name}, '
                                f'default {default!r})')
    parser.add_argument('--sim', dest='use_sim', action='store_true',
                        help='same as --use-sim: also start the built-in world')
    parser.add_argument('--record', metavar='OUT.mcap', default='',
                        help="also record the agent's inputs and outputs into a bag "
                             '(leo-record OUT.mcap; docs/bags.md)')
    return parser


def record_command(out, args: AgentArguments):
    """Return the leo-record command line that records ``args``'s agent into ``out``."""
    from leo_ros.bags.record import RecordConfig
    RecordConfig(path=out)          # checks the file name before anything starts
    argv = [resolve_executable(NodeSpec('leo_record', 'leo-record')), out, '--quiet']
    if args.use_sim_time:
        argv.append('--use-sim-time')
    if args.namespace:
        argv += ['--ros-args', '-r', f'__ns:=/{args.namespace.strip("/")}']
    return argv


def resolve_executable(spec):
    """
    Return the path of a node's executable, or raise with what is missing.

    Looks where ``ros2 run`` would (``<prefix>/lib/<package>``), then beside this
    interpreter (the virtual environment's ``bin``), then on PATH.
    """
    prefix = Path(sys.prefix)
    for directory in (prefix / 'lib' / spec.package, prefix / 'bin'):
        candidate = directory / spec.executable
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(spec.executable)
    if found is None:
        raise FileNotFoundError(f'{spec.executable} ({spec.package}) is neither in '
                                f'{prefix / "lib" / spec.package} nor on PATH')
    return found


def main(argv=None) -> int:
    options = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        args = AgentArguments(**{name: getattr(options, name) for name in
                                 AgentArguments.names()})
        specs = agent_nodes(args)
        commands = [[resolve_executable(spec)] + ros_arguments(spec, args) for spec in specs]
        if options.record:          # first, so that it sees the nodes' first messages
            specs.insert(0, NodeSpec('leo_record', 'leo-record'))
            commands.insert(0, record_command(options.record, args))
    except (ValueError, FileNotFoundError) as error:
        print(f'leo-agent: {error}', file=sys.stderr)
        return 2

    from leo_ros.ros.process import ManagedProcess
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    processes = []
    status = 0
    try:
        for spec, command in zip(specs, commands):
            processes.append(ManagedProcess(command, name=spec.name, echo=True))
            print(f'leo-agent: started {spec.name} (pid {processes[-1].process.pid})',
                  flush=True)
        while not stopping:
            dead = [p for p in processes if p.poll() is not None]
            if dead:
                for process in dead:
                    print(f'leo-agent: {process.name} exited with {process.poll()}; stopping',
                          file=sys.stderr, flush=True)
                status = 1
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for process in reversed(processes):
            process.stop()
    return status


if __name__ == '__main__':
    sys.exit(main())
