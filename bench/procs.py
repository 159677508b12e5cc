"""Stopping the peers the benchmarks start: one helper for every script in bench/."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL


def stop_group(proc: subprocess.Popen | None, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process group led by ``proc`` (started with start_new_session), SIGKILL if it lingers, reap."""
    if proc is None:
        return
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
