"""Start and stop leo_ros processes (nodes, tools) with the right environment."""

import os
from pathlib import Path
import signal
import subprocess
import time

from leo_ros.ros.env import child_environment


class ManagedProcess:
    """
    A child process in its own process group, stopped with SIGINT, then harder.

    :param argv: command line
    :param name: short name for logs
    :param env: extra environment variables
    :param log_path: file that receives stdout and stderr (default: a pipe read on stop)
    """

    def __init__(self, argv, name=None, env=None, log_path=None):
        self.argv = [str(arg) for arg in argv]
        self.name = name or Path(self.argv[0]).name
        self.log_path = Path(log_path) if log_path else None
        self._log_file = open(self.log_path, 'wb') if self.log_path else None
        self.process = subprocess.Popen(
            self.argv, env=child_environment(env), start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file or subprocess.PIPE, stderr=subprocess.STDOUT)
        self.output = ''

    def poll(self):
        """Return the exit code, or None while running."""
        return self.process.poll()

    def stop(self, timeout=5.0) -> int:
        """Interrupt the process group and wait; escalate to SIGTERM and SIGKILL."""
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 2.0),
                          (signal.SIGKILL, 2.0)):
            if self.process.poll() is not None:
                break
            _signal_group(self.process.pid, sig)
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        _signal_group(self.process.pid, signal.SIGKILL)  # leftovers of the group
        self.process.wait()
        if self.process.stdout is not None:
            self.output = self.process.stdout.read().decode(errors='replace')
        if self._log_file:
            self._log_file.close()
            self.output = self.log_path.read_text(errors='replace')
        return self.process.returncode

    def wait_for_exit(self, timeout) -> int:
        """Wait for the process to end by itself; return its exit code."""
        code = self.process.wait(timeout)
        self.stop()
        return code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_until(predicate, timeout, period=0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period)
    return bool(predicate())
