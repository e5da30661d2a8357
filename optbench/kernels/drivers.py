"""The serial and parallel drivers of an optimizer, made from its chunk kernel.

An optimizer's algorithm is one Numba function that updates one contiguous run of one array::

    chunk(param, grad, state, column, common, hp, step)

param, grad : 1-D views of the run's elements (C-contiguous, the array's dtype).
state : the bucket's whole state table (n_state, total_elements); the run's buffers are the
    views ``state[row, column:column + param.size]``, rows in the spec's state order.
column : the run's first column in ``state``.
common : float64 (COMMON,): ``grad_scale, clip_value, l1, maximize, flush_denormals``, read
    through ``optbench.kernels.optimizers.gradient_options`` and ``gradient``.
hp : float64: the spec's kernel row (``spec.kernel_names``).
step : the array's step number, 1 on the first step.

:func:`drivers` returns ``(serial, parallel)``, both with the calling convention of
``optbench.kernels.optimizers``: ``kernel(work, param_addresses, grad_addresses, state, hyper,
steps)``; the serial one runs the work table's chunks in order on the calling thread, the
parallel one spreads them over Numba's threads, and both give bitwise identical results.

The drivers are written out as a small module in the cache folder and imported from there, so
that Numba caches their machine code on disk as it does any other kernel's. A closure over the
chunk would be compiled again in every process: Numba's cache key hashes a closure's contents,
and a Numba function's pickled form carries an identifier drawn anew in each process. The
module's file name holds a hash of the chunk's source file and of optbench's kernel sources,
since Numba checks a cached function against its own file only: editing the chunk or a helper
it inlines gives a new module, never stale machine code. A chunk that no module exports (one
defined inside a function, or in a script) gets drivers compiled in the process, uncached.
"""

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import numba
from numba import njit

from ._config import UNFUSED, UNFUSED_INLINE, UNFUSED_PARALLEL
from ._pointers import view

# hyper values every algorithm reads first: grad_scale, clip_value, l1, maximize, flush_denormals
COMMON = 5
FLUSH = 4

# one loop over the work table's chunks, calling {call} on each
_PASS = """
    for k in {loop}(work.shape[0]):
        arguments = chunk_arguments(k, work, addresses, state, hyper, steps)
        param, grad, column, step, common, hp = arguments
        saved = flush_begin(common[FLUSH])
        {call}
        flush_end(saved)
"""
_SIGNATURE = """

@njit(**{options})
def {name}(work, param_addresses, grad_addresses, state, hyper, steps{extra}):{count}
    addresses = (param_addresses, grad_addresses)"""
_COUNT = "\n    count_step(steps)"
_CHUNK = "chunk(param, grad, state, column, common, hp, step)"
# a spec with a reduce pass: partial sums per chunk, added per array in chunk order, then the
# update, which reads the array's sums
_REDUCE = "reduce(param, grad, state, column, common, hp, step, ndims[work[k, 0]], partials[k])"
_ADD = "\n    add_partials(work, partials, totals)"
_UPDATE = (
    "chunk(param, grad, state, column, common, hp, step, ndims[work[k, 0]], totals[work[k, 0]])"
)


def _driver(options, name, loop, passes):
    """The source of one driver: the serial or parallel loop over ``passes``: "chunk" (one
    pass), "reduce update" (two), or one of "reduce" and "update" alone (a coupled spec's
    drivers, which Python calls in turn; the first counts the step)."""
    if passes == "chunk":
        body, extra, count = _PASS.format(loop=loop, call=_CHUNK), "", _COUNT
    else:
        body, extra, count = "", ", ndims, partials, totals", ""
        if "reduce" in passes:
            body += _PASS.format(loop=loop, call=_REDUCE).rstrip("\n") + _ADD
            count = _COUNT
        if "update" in passes:
            body += _PASS.format(loop=loop, call=_UPDATE)
    return _SIGNATURE.format(options=options, name=name, extra=extra, count=count) + body


_HEADER = '''"""Drivers of {qualified}, written by optbench.kernels.drivers; do not edit."""

from numba import njit, prange

from optbench.kernels._fpenv import flush_begin, flush_end
from optbench.kernels.drivers import FLUSH, add_partials, chunk_arguments, count_step
{import_line}
'''
# {qualified} and {import_line} are filled in per chunk; the two drivers differ in their loop
_TEMPLATE = (
    _HEADER
    + _driver("SERIAL_OPTIONS", "serial", "range", "chunk")
    + _driver("PARALLEL_OPTIONS", "parallel", "prange", "chunk")
)
_TWO_PASS_TEMPLATE = (
    _HEADER
    + _driver("SERIAL_OPTIONS", "serial", "range", "reduce update")
    + _driver("PARALLEL_OPTIONS", "parallel", "prange", "reduce update")
)
_SPLIT_TEMPLATE = (
    _HEADER
    + _driver("SERIAL_OPTIONS", "serial", "range", "reduce")
    + _driver("PARALLEL_OPTIONS", "parallel", "prange", "reduce")
    + _driver("SERIAL_OPTIONS", "serial_update", "range", "update")
    + _driver("PARALLEL_OPTIONS", "parallel_update", "prange", "update")
)

_made = {}


@njit(**UNFUSED_INLINE)
def count_step(steps):
    for array in range(steps.size):
        steps[array] += 1


@njit(**UNFUSED_INLINE)
def add_partials(work, partials, totals):
    """``totals[a]``: the sum of array ``a``'s chunk partials (rows of ``partials``, one per
    work chunk), added serially in chunk order: the same bits for any thread count."""
    for a in range(totals.shape[0]):
        for i in range(totals.shape[1]):
            totals[a, i] = 0.0
    for k in range(work.shape[0]):
        a = work[k, 0]
        for i in range(totals.shape[1]):
            totals[a, i] += partials[k, i]


@njit(**UNFUSED_INLINE)
def chunk_arguments(k, work, addresses, state, hyper, steps):
    """Chunk ``k``: (param view, grad view, state column, step, common hyper, own hyper).

    ``addresses`` is the pair (param_addresses, grad_addresses); the hyper row of the chunk's
    group is split into the ``COMMON`` values every algorithm reads and the algorithm's own.
    """
    array, start, stop, group = work[k, 0], work[k, 1], work[k, 2], work[k, 4]
    param = view(addresses[0][array], start, stop, state)
    grad = view(addresses[1][array], start, stop, state)
    row = hyper[group]
    return param, grad, work[k, 3], steps[array], row[:COMMON], row[COMMON:]


def drivers(chunk, reduce=None, split=False):
    """``(serial, parallel)`` drivers of the Numba function ``chunk`` (made once per process);
    with ``reduce``, the two-pass drivers of a spec with reductions, which take three more
    arguments: ``ndims`` (int64, per array), ``partials`` (float64, per chunk and sum) and
    ``totals`` (float64, per array and sum); with ``split`` as well, ``(serial, parallel,
    serial_update, parallel_update)``: the reduce pass (which counts the step) and the update
    apart, for a coupled spec that combines the sums of every array in between."""
    key = (chunk, reduce, split)
    made = _made.get(key)
    if made is None:
        template = _template(reduce, split)
        made = _from_cached_module(chunk, reduce, template) or _compiled_here(
            chunk, reduce, template
        )
        made = _made[key] = made
    return made


def _template(reduce, split):
    if reduce is None:
        return _TEMPLATE
    return _SPLIT_TEMPLATE if split else _TWO_PASS_TEMPLATE


def _exports(module):
    names = ("serial", "parallel", "serial_update", "parallel_update")
    return tuple(getattr(module, name) for name in names if name in vars(module))


def cache_folder():
    """Where generated modules live: ``$OPTBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/optbench``
    (``~/.cache/optbench``), else a folder in the temporary directory when that is not
    writable."""
    configured = os.environ.get("OPTBENCH_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "optbench"


def _exported(chunk):
    """``(module name, attribute)`` under which ``chunk`` can be imported, or None."""
    module_name, name = getattr(chunk, "__module__", None), getattr(chunk, "__name__", None)
    module = sys.modules.get(module_name)
    if module_name in (None, "__main__") or getattr(module, name, None) is not chunk:
        return None
    return module_name, name


def _source_digest(template, functions):
    """Hash of the functions' source files, optbench's kernel sources and the template."""
    digest = hashlib.sha256(template.encode())
    digest.update(numba.__version__.encode())
    sources = sorted(Path(__file__).parent.glob("*.py"))
    sources.extend(Path(f.py_func.__code__.co_filename) for f in functions)
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _from_cached_module(chunk, reduce, template):
    functions = (chunk,) if reduce is None else (chunk, reduce)
    exported = [_exported(f) for f in functions]
    if None in exported:
        return None
    module_name, name = exported[0]
    try:
        digest = _source_digest(template, functions)
    except OSError:  # no source file to hash: nothing to check a cache against
        return None
    stem = f"{module_name.replace('.', '_')}__{name}__{digest}"
    imports = [f"from {module_name} import {name} as chunk"]
    if reduce is not None:
        imports.append(f"from {exported[1][0]} import {exported[1][1]} as reduce")
    source = template.format(qualified=f"{module_name}.{name}", import_line="\n".join(imports))
    path = _written(stem, source)
    if path is None:
        return None
    spec = importlib.util.spec_from_file_location(f"optbench_drivers_{stem}", path)
    module = importlib.util.module_from_spec(spec)
    module.SERIAL_OPTIONS = UNFUSED
    module.PARALLEL_OPTIONS = UNFUSED_PARALLEL
    spec.loader.exec_module(module)
    sys.modules[spec.name] = module
    return _exports(module)


def _written(stem, source):
    """The path of ``stem``.py holding ``source``, written atomically once; None if no cache
    folder is writable."""
    for folder in (cache_folder(), Path(tempfile.gettempdir()) / f"optbench-{os.getuid()}"):
        folder = folder / "drivers"
        path = folder / f"{stem}.py"
        if path.exists():
            return path
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(handle, "w") as file:
                file.write(source)
            os.replace(temporary, path)
        except OSError:
            continue
        return path
    return None


def _compiled_here(chunk, reduce, template):
    namespace = {
        "chunk": chunk,
        "reduce": reduce,
        "SERIAL_OPTIONS": {**UNFUSED, "cache": False},
        "PARALLEL_OPTIONS": {**UNFUSED_PARALLEL, "cache": False},
    }
    source = template.format(qualified=getattr(chunk, "__name__", "chunk"), import_line="")
    exec(compile(source, f"<drivers of {chunk!r}>", "exec"), namespace)
    names = ("serial", "parallel", "serial_update", "parallel_update")
    return tuple(namespace[name] for name in names if name in namespace)
