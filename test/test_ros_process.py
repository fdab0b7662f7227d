"""ManagedProcess: children never outlive the process that started them."""

import os
import signal
import subprocess
import sys

from leo_ros.ros.process import wait_until

PARENT = """
from leo_ros.ros.process import ManagedProcess
import sys, time
child = ManagedProcess(['sleep', '60'])
print(child.process.pid, flush=True)
time.sleep(60)
"""


def test_child_dies_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, '-c', PARENT], stdout=subprocess.PIPE)
    child = int(parent.stdout.readline())
    os.kill(child, 0)                                  # running
    parent.send_signal(signal.SIGKILL)                 # no clean-up code runs in the parent
    parent.wait()

    def gone():
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        # A zombie until reaped by init counts as gone.
        with open(f'/proc/{child}/stat') as stat:
            return stat.read().split()[2] == 'Z'

    assert wait_until(gone, timeout=5.0), 'the child outlived its parent'
