"""What a user waits for before the first step: import, Numba compilation and cached loading.

Each ``track_*`` runs a fresh interpreter (so nothing is compiled or imported yet) with
``NUMBA_CACHE_DIR`` pointing at a directory this benchmark controls, and reports seconds
measured inside that interpreter, which leaves out interpreter start-up (the script and its
targets are :mod:`optbench.startup`'s, shared with ``optbench throughput --startup``):

* ``Compile``: an empty cache directory, so every kernel is compiled;
* ``CachedLoad``: a cache directory filled by a previous run, so every kernel is loaded;
* ``Import.track_import``: ``import optbench.nn, optbench.optim, optbench.registry`` (every
  kernel module).

The work of a target: for an optimizer, build it and take one step, on a small model (the
serial kernel) and on a model above ``optim.PARALLEL_MIN_ELEMENTS`` (the parallel kernel), in
float32 and in float64; for a layer, its forward and backward on a small and on a large input,
in both dtypes. The reported time is the sum over those four first calls.
"""

import shutil
import tempfile

from optbench import nn, optim, registry
from optbench import startup as fresh_interpreter

from .common import SMOKE
from .normalization import LAYERS

TARGETS = [f"optimizer:{name}" for name in registry.names()]
TARGETS += [f"layer:{name}" for name in LAYERS]
if SMOKE:  # one of each kind, float32 and the small size only (see run_fresh)
    TARGETS = [TARGETS[0], f"layer:{next(iter(LAYERS))}"]

# elements per array or input: one for the serial kernel, one for the parallel kernel
SIZES = {
    "import": (),
    "optimizer": (1000, 2 * optim.PARALLEL_MIN_ELEMENTS),
    "layer": (4 * fresh_interpreter.LAYER_FEATURES, 2 * nn.PARALLEL_MIN_ELEMENTS),
}


def run_fresh(target, cache_dir):
    """Seconds of the import (``"import"``) and of the first calls of ``target``
    (``"first_calls"``), measured by :func:`optbench.startup.measure` in a new interpreter that
    uses ``cache_dir`` as Numba's cache and imports the same optbench as this process."""
    sizes = SIZES[target.partition(":")[0]]
    seconds = fresh_interpreter.measure(
        target,
        cache_dir,
        sizes=sizes[:1] if SMOKE else sizes,
        dtypes=("float32",) if SMOKE else ("float32", "float64"),
    )
    return {"import": seconds["import_s"], "first_calls": seconds["first_calls_s"]}


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
