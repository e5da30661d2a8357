"""What a user waits for before the first step: the import of optbench and the first calls of
an optimizer or a layer (Numba compiling the kernels, or loading them from its cache).

:func:`measure` runs :data:`SCRIPT` in a new interpreter, so that nothing is imported or
compiled yet, with Numba's cache (``NUMBA_CACHE_DIR``) and optbench's generated modules
(``OPTBENCH_CACHE_DIR``) in a directory the caller gives: empty, every kernel is compiled;
filled by an earlier run, every kernel is loaded. The seconds are measured inside that
interpreter, which leaves out the interpreter's own start-up. Both
:func:`optbench.throughput.startup_times` and the asv suite ``benchmarks/startup.py`` measure
with it.

Targets:

==================  ==========================================================================
``import``          ``import numpy, optbench.nn, optbench.optim, optbench.registry``; no call
``optimizer:NAME``  for each dtype and size: build the optimizer over one array of ``size``
                    elements (zeros, gradient ones) and take one step
``layer:NAME``      for each dtype and size: the layer's forward and backward (the output as
                    the upstream gradient) on a standard normal input of shape
                    ``(size // LAYER_FEATURES, LAYER_FEATURES)``; NAME is one of
                    :data:`LAYERS`
==================  ==========================================================================
"""

import json
import os
import subprocess
import sys

from . import optim, validation

TARGET_KINDS = ("import", "optimizer", "layer")
LAYERS = ("layer_norm", "rms_norm", "batch_norm")
LAYER_FEATURES = 64
DTYPES = ("float32", "float64")

# Runs in the new interpreter; argv[1] is the JSON of the request built by measure().
# Prints one line of JSON: the seconds, wall-clock and CPU, of the import and the first calls.
SCRIPT = """
import json, sys, time
wall, cpu = time.perf_counter(), time.process_time()
import numpy as np
import optbench.nn, optbench.optim, optbench.registry
seconds = {"import_s": time.perf_counter() - wall, "import_cpu_s": time.process_time() - cpu}
from optbench.spec import conforming_shape  # loaded with optbench.optim above
request = json.loads(sys.argv[1])
kind, _, name = request["target"].partition(":")
features = request["layer_features"]


def first_call(dtype, size):
    if kind == "optimizer":
        # a matrix of one row for an optimizer of matrices (Muon)
        shape = conforming_shape((size,), optbench.registry.get(name).ndims)
        params, grads = [np.zeros(shape, dtype)], [np.ones(shape, dtype)]
        make = optbench.optim.make
        return lambda: make(name, params, dispatch=request["dispatch"]).step(grads)
    x = np.random.default_rng(0).standard_normal((size // features, features)).astype(dtype)
    forward, backward = getattr(optbench.nn, name), getattr(optbench.nn, name + "_backward")
    if name == "batch_norm":
        running = np.zeros(features, dtype), np.ones(features, dtype)
        return lambda: backward(*forward(x, *running))
    return lambda: backward(*forward(x, features))


seconds["first_calls_s"] = seconds["first_calls_cpu_s"] = 0.0
for dtype in () if kind == "import" else request["dtypes"]:
    for size in request["sizes"]:
        call = first_call(dtype, size)
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        seconds["first_calls_s"] += time.perf_counter() - wall
        seconds["first_calls_cpu_s"] += time.process_time() - cpu
print(json.dumps(seconds))
"""


def measure(target, cache_dir, *, sizes=(1000,), dtypes=DTYPES, dispatch="auto", timeout=600):
    """Seconds of the import and of the first calls of ``target``, in a new interpreter.

    target : ``"import"``, ``"optimizer:NAME"`` or ``"layer:NAME"`` (see the module's table)
    cache_dir : the directory of Numba's cache and optbench's generated modules
    sizes : elements per array (per input for a layer: a multiple of :data:`LAYER_FEATURES`)
    dtypes : names from :data:`DTYPES`; every dtype is called at every size, in that order
    dispatch : the optimizer's ``dispatch`` option; a layer picks its kernel by size ("auto")

    The new interpreter imports the same optbench as this process (its source root goes first
    on ``PYTHONPATH``). Returns a dict of seconds: ``import_s`` and ``first_calls_s``
    (wall-clock; the sum over the calls), and the interpreter's CPU seconds for the same,
    ``import_cpu_s`` and ``first_calls_cpu_s`` (less sensitive to other processes on the
    machine). A name the new interpreter cannot resolve, or any other failure there, raises a
    ``RuntimeError`` holding its error output.
    """
    kind, _, name = target.partition(":") if isinstance(target, str) else ("", "", "")
    if not (target == "import" or (kind in TARGET_KINDS[1:] and name)):
        raise ValueError(
            f"target must be 'import', 'optimizer:NAME' or 'layer:NAME', got {target!r}"
        )
    sizes = [validation.integer(f"sizes[{i}]", size, 1) for i, size in enumerate(sizes)]
    dtypes = [validation.choice(f"dtypes[{i}]", dtype, DTYPES) for i, dtype in enumerate(dtypes)]
    validation.choice("dispatch", dispatch, optim.DISPATCH_MODES)
    if kind == "layer":
        validation.choice("layer", name, LAYERS)
        if dispatch != "auto":
            raise ValueError(
                f"dispatch applies to optimizers, not to {target}: a layer picks its kernel by size"
            )
        for i, size in enumerate(sizes):
            if size % LAYER_FEATURES:
                raise ValueError(f"sizes[{i}] must be a multiple of {LAYER_FEATURES}, got {size}")
    request = {
        "target": target,
        "sizes": sizes,
        "dtypes": dtypes,
        "dispatch": dispatch,
        "layer_features": LAYER_FEATURES,
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(request)],
        env=_environment(cache_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"startup script for {target} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def _environment(cache_dir):
    source_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        "NUMBA_CACHE_DIR": str(cache_dir),
        "OPTBENCH_CACHE_DIR": str(cache_dir),
        "PYTHONPATH": path,
    }
