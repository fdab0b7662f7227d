"""Start and stop leo_ros processes (nodes, tools) with the right environment."""

import collections
import os
from pathlib import Path
import signal
import subprocess
import threading
import time

from leo_ros.ros.env import child_environment


class ManagedProcess:
    """
    A child process in its own process group, stopped with SIGINT, then harder.

    A reader thread drains its output (so a chatty child never blocks on a full pipe), keeps
    the last lines, and optionally writes them to a log file and echoes them with a prefix.

    :param argv: command line
    :param name: short name for logs
    :param env: extra environment variables
    :param log_path: file that receives everything the child prints
    :param echo: print each line as ``[name] line`` on this process's stdout
    :param tail_lines: how many of the last lines to keep in :attr:`output`
    """

    def __init__(self, argv, name=None, env=None, log_path=None, echo=False, tail_lines=400):
        self.argv = [str(arg) for arg in argv]
        self.name = name or Path(self.argv[0]).name
        self.log_path = Path(log_path) if log_path else None
        self.echo = echo
        self._tail = collections.deque(maxlen=tail_lines)
        self.process = subprocess.Popen(
            self.argv, env=child_environment(env), start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        log = open(self.log_path, 'w') if self.log_path else None
        try:
            for raw in self.process.stdout:
                line = raw.decode(errors='replace').rstrip('\n')
                self._tail.append(line)
                if log:
                    log.write(line + '\n')
                    log.flush()
                if self.echo:
                    print(f'[{self.name}] {line}', flush=True)
        finally:
            if log:
                log.close()

    @property
    def output(self) -> str:
        """Return the last lines the process printed."""
        return '\n'.join(self._tail)

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
        self._reader.join(timeout=2.0)
        return self.process.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _die_with_parent():
    """In the child: get SIGTERM when the parent dies, so no node outlives its runner."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):   # not Linux: the runner's own clean-up still applies
        pass


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
