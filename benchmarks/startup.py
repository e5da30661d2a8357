"""What a user waits for before the first step: import, Numba compilation and cached loading.

Each ``track_*`` runs a fresh interpreter (so nothing is compiled or imported yet) with
``NUMBA_CACHE_DIR`` pointing at a directory this benchmark controls, and reports seconds
measured inside that interpreter, which leaves out interpreter start-up:

* ``Compile``: an empty cache directory, so every kernel is compiled;
* ``CachedLoad``: a cache directory filled by a previous run, so every kernel is loaded;
* ``Import.track_import``: ``import optbench.registry, optbench.nn`` (every kernel module).

The work of a target: for an optimizer, build it and take one step, on a small model (the
serial kernel) and on a model above ``optim.PARALLEL_MIN_ELEMENTS`` (the parallel kernel), in
float32 and in float64; for a layer, its forward and backward on a small and on a large input,
in both dtypes. The reported time is the sum over those four first calls.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import optbench
from optbench import registry

from .common import SMOKE
from .normalization import LAYERS

TARGETS = [f"optimizer:{name}" for name in registry.names()]
TARGETS += [f"layer:{name}" for name in LAYERS]
if SMOKE:  # one of each kind, float32 and the small size only (see SCRIPT)
    TARGETS = [TARGETS[0], f"layer:{next(iter(LAYERS))}"]

# Runs in the fresh interpreter; argv[1] is a target or "import" (nothing but the imports),
# argv[2] "1" in smoke mode. Prints a JSON dict of seconds.
SCRIPT = """
import json, sys, time
start = time.perf_counter()
import numpy as np
import optbench.nn, optbench.optim, optbench.registry
imported = time.perf_counter()
kind, _, name = sys.argv[1].partition(":")
smoke = sys.argv[2] == "1"
first_calls = 0.0
for dtype in () if kind == "import" else (np.float32,) if smoke else (np.float32, np.float64):
    if kind == "optimizer":
        for size in (1000, 2 * optbench.optim.PARALLEL_MIN_ELEMENTS)[: 1 if smoke else 2]:
            params, grads = [np.zeros(size, dtype)], [np.ones(size, dtype)]
            begin = time.perf_counter()
            optbench.optim.make(name, params).step(grads)
            first_calls += time.perf_counter() - begin
    else:
        forward = getattr(optbench.nn, name)
        backward = getattr(optbench.nn, name + "_backward")
        for rows in (4, 2 * optbench.nn.PARALLEL_MIN_ELEMENTS // 64)[: 1 if smoke else 2]:
            x = np.random.default_rng(0).standard_normal((rows, 64)).astype(dtype)
            begin = time.perf_counter()
            if name == "batch_norm":
                y, ctx = forward(x, np.zeros(64, dtype), np.ones(64, dtype))
            else:
                y, ctx = forward(x, 64)
            backward(y, ctx)
            first_calls += time.perf_counter() - begin
print(json.dumps({"import": imported - start, "first_calls": first_calls}))
"""


def run_fresh(target, cache_dir):
    """Seconds measured by ``SCRIPT`` in a new interpreter that uses ``cache_dir`` as Numba's
    cache and imports the same optbench as this process."""
    source_root = os.path.dirname(os.path.dirname(os.path.abspath(optbench.__file__)))
    path = os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")]))
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": cache_dir,
        "OPTBENCH_CACHE_DIR": cache_dir,
        "PYTHONPATH": path,
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, target, "1" if SMOKE else "0"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"startup script for {target} failed:\n{result.stderr}")
    return json.loads(result.stdout.splitlines()[-1])


class _Fresh:
    params = (TARGETS,)
    param_names = ("target",)
    unit = "seconds"
    rounds = 1
    repeat = 1
    timeout = 600

    def setup(self, target):
        self.cache_dir = tempfile.mkdtemp(prefix="optbench-numba-cache-")

    def teardown(self, target):
        shutil.rmtree(self.cache_dir, ignore_errors=True)


class Compile(_Fresh):
    def track_compile(self, target):
        return run_fresh(target, self.cache_dir)["first_calls"]


class CachedLoad(_Fresh):
    def setup(self, target):
        super().setup(target)
        run_fresh(target, self.cache_dir)  # fills the cache

    def track_cached_load(self, target):
        return run_fresh(target, self.cache_dir)["first_calls"]


class Import:
    unit = "seconds"
    rounds = 1
    timeout = 120

    def setup(self):
        self.cache_dir = tempfile.mkdtemp(prefix="optbench-numba-cache-")

    def teardown(self):
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def track_import(self):
        return run_fresh("import", self.cache_dir)["import"]
