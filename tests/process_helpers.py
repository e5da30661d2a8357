"""Shared helper of the resume tests: a real command-line process killed mid-work."""

import signal
import subprocess
import sys
import time


def kill_after_cells(arguments, cell_dir, count, timeout=120):
    """Start ``python -m optbench *arguments``, SIGKILL it once ``cell_dir`` holds ``count``
    cell files (failing if it ends first or ``timeout`` seconds pass), and wait for it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "optbench", *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout
    try:
        while len(list(cell_dir.glob("*.parquet"))) < count:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
