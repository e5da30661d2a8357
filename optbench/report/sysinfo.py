"""The machine and software a report was measured on, as (item, value) rows.

Package versions are read from installed metadata (:mod:`importlib.metadata`), so an optional
peer such as torch is reported without being imported. The git commit is the working tree's
``HEAD`` with ``+dirty`` when tracked files differ from it.
"""

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys

import pandas as pd

from ..throughput import cpu_model

PACKAGES = ("optbench", "numpy", "numba", "llvmlite", "pandas", "matplotlib", "torch", "asv")


def memory_gib():
    """Total physical memory in GiB (NaN where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")


def git_commit(path="."):
    """``HEAD``'s hash (``+dirty`` if tracked files changed), or ``""`` outside a repository."""
    try:
        head = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if dirty else "")


def version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def collect(threads=None):
    """A table of (item, value) strings: date, host, CPU, cores, memory, threads, OS, Python,
    package versions and git commit. ``threads`` is the Numba thread count the report used."""
    import numba

    source = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    items = [
        ("date (UTC)", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")),
        ("host", platform.node()),
        ("CPU", cpu_model()),
        ("logical CPUs", str(os.cpu_count())),
        ("CPUs available to this process", str(_available_cpus())),
        ("memory (GiB)", f"{memory_gib():.1f}"),
        ("Numba threads", str(numba.get_num_threads() if threads is None else threads)),
        ("Numba threading layer", _threading_layer()),
        ("OS", platform.platform()),
        ("Python", sys.version.split()[0]),
        *((package, version(package)) for package in PACKAGES),
        ("git commit", git_commit(source) or "unknown"),
    ]
    return pd.DataFrame(items, columns=["item", "value"])


def _available_cpus():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


def _threading_layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:
        # the layer is chosen when the first parallel kernel runs
        return f"not yet chosen (configured: {numba.config.THREADING_LAYER})"
