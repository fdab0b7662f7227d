"""
Helpers for the ROS tests of policy_node's interfaces (parameters, frames, Nav2, manipulator).

The node under test runs in its own process (``leo_ros.tools.stand_ins policy``: the real
PolicyNode with a scripted model, see that module); this process is the robot's other side:
it publishes the scene and the transforms, watches every motion output, and calls services.
"""

import sys

from leo_ros.tools.stand_ins import MOTION_TOPICS, MotionWatcher

__all__ = ['MOTION_TOPICS', 'Robot', 'start_policy', 'start_stand_in']

#: the test's side of the agent (leo_ros.tools.stand_ins.MotionWatcher)
Robot = MotionWatcher


def start_policy(spawn, *parameters, name='policy_node', extra=()):
    """Start the policy node with the scripted model; ``parameters`` are 'name:=value'."""
    return start_stand_in(spawn, 'policy', *parameters, name=name, extra=extra)


def start_stand_in(spawn, kind, *parameters, name=None, extra=()):
    """Start ``leo_ros.tools.stand_ins KIND``; ``extra``: more ``--ros-args`` items."""
    argv = [sys.executable, '-m', 'leo_ros.tools.stand_ins', kind, '--ros-args']
    for parameter in parameters:
        argv += ['-p', parameter]
    return spawn(argv + list(extra), name=name or f'{kind}_stand_in')
