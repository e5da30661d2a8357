"""Instruction counts of kernel calls under Valgrind: a measure of speed that does not depend on
what else the machine is doing.

Wall time on a shared machine moves by tens of percent between processes; the number of
instructions a call executes does not move at all when the inputs, the code and the library
versions are the same. It misses what instructions do not show (memory bandwidth, caches,
threads, the cost of each instruction), and it sees a change of a few percent in a kernel's work
that wall time cannot. :func:`measure` counts, for each named benchmark, the instructions of one
call of its body.

Two counts are kept. ``compiled_instructions``, the instructions outside the Python interpreter
(Numba's kernels, NumPy's and BLAS's C, libc and libm), are the same in every process. The
interpreter's own instructions are not: CPython's type-attribute cache and its dictionaries
probe by object addresses, which differ from process to process, so the total
(``instructions``) moves by a fraction of a percent between identical runs (measured: 228,213
to 229,988 instructions for an SGD step on 10,000 float32 parameters, while the 63,358 of its
kernel never moved).

How a count is taken
--------------------
A child process (``python -m optbench.instructions``) runs under ``valgrind --tool=callgrind
--instr-atstart=no``: Valgrind translates the program but instruments and counts nothing until
the program asks it to. The program asks with *client requests*, Valgrind's marker instruction
sequence (four rotations of ``rdi`` that add up to a full turn, then ``xchg rbx, rbx``: nothing
at all on a real CPU), which :func:`client_request` emits from Numba code (an LLVM inline-asm
intrinsic). For each benchmark in turn the child builds the inputs and calls the body
:data:`WARMUP` times (this compiles or loads its kernels and lets the Python layers fill their
caches), then starts the instrumentation, zeroes the counters, calls the body ``calls`` times,
dumps the counters to a numbered file and stops the instrumentation: the file holds exactly the
instructions of those calls and of the loop that makes them. The count of one call is the dump's
total over ``calls``.

The process runs everything on one thread with a fixed hash seed: ``PYTHONHASHSEED=0``,
``NUMBA_NUM_THREADS=1``, ``OPENBLAS_NUM_THREADS=1``, ``OMP_NUM_THREADS=1``; and Numba compiles
for ``x86-64-v3`` with that CPU's features alone (:data:`CPU_NAME`, ``NUMBA_CPU_FEATURES=""``;
Valgrind 3.19 does not run AVX-512, and the host's features, Numba's default, would key the
kernels differently in its cache under Valgrind). The same child runs once natively with that
environment first, so that Numba's on-disk cache holds every kernel for that CPU and the counted
process loads them all: the same kernel executes a different number of instructions when it was
compiled in the process that runs it (Adam's step on 10,000 float32 numbers: 78,216 then,
80,712 loaded from the cache), so counts are comparable only between kernels loaded alike.
"""

import dataclasses
import functools
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd

from . import nn, optim, problems, registry

WARMUP = 3
CALLS = 5
CPU_NAME = "x86-64-v3"
ENVIRONMENT = {
    "PYTHONHASHSEED": "0",
    "NUMBA_CPU_NAME": CPU_NAME,
    # the CPU name's own features: the host's (Numba's default) differ under Valgrind, which
    # would key the kernels differently in Numba's cache from the native run's
    "NUMBA_CPU_FEATURES": "",
    "NUMBA_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
OPTIMIZER_ELEMENTS = 10_000
LAYER_SHAPE = (32, 256)
TRAINING_PROBLEMS = ("digits_mlp", "mnist1d_cnn", "modular_addition")
TRAINING_BATCH = 32
DTYPES = ("float32", "float64")

# Valgrind's client requests: callgrind's are ('C' << 24 | 'T' << 16) + their position in its
# enumeration (callgrind.h); "running on Valgrind" is a core request
_CALLGRIND = (ord("C") << 24) | (ord("T") << 16)
DUMP_STATS = _CALLGRIND + 0
ZERO_STATS = _CALLGRIND + 1
START_INSTRUMENTATION = _CALLGRIND + 4
STOP_INSTRUMENTATION = _CALLGRIND + 5
RUNNING_ON_VALGRIND = 0x1001


# --------------------------------------------------------------------------------------------
# client requests
# --------------------------------------------------------------------------------------------
@functools.cache
def _requests():
    """``(request, running, start, stop)``: jitted functions issuing client requests, compiled
    here (never called to compile: a first call of ``start`` would start the counting)."""
    import llvmlite.binding as llvm
    from llvmlite import ir
    from numba import njit, types
    from numba.core import cgutils
    from numba.extending import intrinsic

    llvm.initialize_native_asmparser()  # inline assembly needs it; Numba does not ask for it

    @intrinsic
    def client_request(typingctx, request):
        def codegen(context, builder, signature, args):
            word = ir.IntType(64)
            block = cgutils.alloca_once(builder, ir.ArrayType(word, 6))
            for i in range(6):
                value = args[0] if i == 0 else ir.Constant(word, 0)
                builder.store(value, cgutils.gep_inbounds(builder, block, 0, i))
            marker = ir.InlineAsm(
                ir.FunctionType(word, [word.as_pointer(), word]),
                "rolq $$3, %rdi ; rolq $$13, %rdi ; rolq $$61, %rdi ; rolq $$51, %rdi ; "
                "xchgq %rbx, %rbx",
                "={rdx},{rax},0,~{cc},~{memory},~{rdi}",
                side_effect=True,
            )
            first = cgutils.gep_inbounds(builder, block, 0, 0)
            return builder.call(marker, [first, ir.Constant(word, 0)])

        return types.uint64(types.uint64), codegen

    @njit(cache=False)
    def request(code):
        return client_request(np.uint64(code))

    @njit(cache=False)
    def start():
        client_request(np.uint64(START_INSTRUMENTATION))
        client_request(np.uint64(ZERO_STATS))

    @njit(cache=False)
    def stop():
        client_request(np.uint64(DUMP_STATS))
        client_request(np.uint64(STOP_INSTRUMENTATION))

    request.compile((types.int64,))
    start.compile(())
    stop.compile(())
    return request, start, stop


def client_request(code):
    """Issue Valgrind client request ``code`` (an integer); its answer, 0 outside Valgrind."""
    return int(_requests()[0](int(code)))


def running_on_valgrind():
    """The number of Valgrind layers this process runs under (0: on the CPU itself)."""
    return client_request(RUNNING_ON_VALGRIND)


def counted(body, calls=CALLS):
    """Call ``body`` ``calls`` times between a start and a dump of the counters (outside
    Valgrind: just the calls)."""
    _, start, stop = _requests()
    start()
    for _ in range(calls):
        body()
    stop()


# --------------------------------------------------------------------------------------------
# the benchmarks
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Benchmark:
    """A counted call: ``name`` and ``make``, which builds the inputs and returns the body."""

    name: str
    make: object


def _normal(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _optimizer(name, dtype):
    spec = registry.get(name)
    shape = (100, OPTIMIZER_ELEMENTS // 100) if spec.ndims == (2,) else (OPTIMIZER_ELEMENTS,)
    params, grads = [_normal(shape, dtype, 0)], [_normal(shape, dtype, 1)]
    optimizer = optim.make(spec, params)
    return functools.partial(optimizer.step, grads)


def _layer(layer, dtype):
    x = _normal(LAYER_SHAPE, dtype, 0)
    dy = _normal(LAYER_SHAPE, dtype, 1)
    features = LAYER_SHAPE[1]
    if layer == "layer_norm":
        weight, bias = np.ones(features, dtype), np.zeros(features, dtype)

        def body():
            _, ctx = nn.layer_norm(x, features, weight, bias)
            nn.layer_norm_backward(dy, ctx)

    elif layer == "rms_norm":
        weight = np.ones(features, dtype)

        def body():
            _, ctx = nn.rms_norm(x, features, weight)
            nn.rms_norm_backward(dy, ctx)

    else:
        weight, bias = np.ones(features, dtype), np.zeros(features, dtype)

        def body():
            _, ctx = nn.batch_norm(x, None, None, weight, bias, training=True)
            nn.batch_norm_backward(dy, ctx)

    return body


def _training(problem_name):
    problem = problems.make(problem_name, seed=0)
    params = problem.initial_params()
    optimizer = optim.make("adam", params, lr=1e-3)
    rng = np.random.default_rng(1)
    draws = [rng.permutation(problem.n_train)[:TRAINING_BATCH] for _ in range(4)]
    batches = itertools.cycle([problem.batch(indices) for indices in draws])

    def body():
        _, grads = problem.loss_and_grad(params, next(batches))
        optimizer.step(grads)

    return body


def benchmarks():
    """Every counted benchmark, by name: each registered optimizer's step on
    :data:`OPTIMIZER_ELEMENTS` parameters (one array; Muon: a 100-row matrix), forward and
    backward of the three normalization layers on :data:`LAYER_SHAPE`, in both dtypes; and a
    training step (gradient and Adam) of :data:`TRAINING_PROBLEMS` at batch
    :data:`TRAINING_BATCH`, float64."""
    found = {}
    for dtype in DTYPES:
        for name in registry.names():
            key = f"optimizer:{name} {dtype} n={OPTIMIZER_ELEMENTS}"
            found[key] = Benchmark(key, functools.partial(_optimizer, name, dtype))
        for layer in ("layer_norm", "rms_norm", "batch_norm"):
            key = f"layer:{layer} {dtype} {LAYER_SHAPE[0]}x{LAYER_SHAPE[1]}"
            found[key] = Benchmark(key, functools.partial(_layer, layer, dtype))
    for problem in TRAINING_PROBLEMS:
        key = f"training:{problem} batch={TRAINING_BATCH}"
        found[key] = Benchmark(key, functools.partial(_training, problem))
    return found


def select(pattern=None):
    """The names of :func:`benchmarks` matching the regular expression ``pattern`` (searched
    anywhere in the name; None: all), in their order; ``ValueError`` when none matches."""
    names = list(benchmarks())
    if pattern is None:
        return names
    try:
        chosen = [name for name in names if re.search(pattern, name)]
    except re.error as error:
        raise ValueError(f"benchmarks pattern {pattern!r}: {error}") from None
    if not chosen:
        raise ValueError(f"benchmarks pattern {pattern!r} matches none of {len(names)} names")
    return chosen


# --------------------------------------------------------------------------------------------
# the measurement
# --------------------------------------------------------------------------------------------
def valgrind_path():
    """The ``valgrind`` executable, or None."""
    return shutil.which("valgrind")


def _child(names, calls):
    table = benchmarks()
    bodies = []
    for name in names:
        body = table[name].make()
        for _ in range(WARMUP):
            body()
        bodies.append(body)
        counted(body, calls)


def _environment():
    return {**os.environ, **ENVIRONMENT}


_NAME = re.compile(r"(c?ob|c?fn|fl|fi|fe|cfi|cfl)=\((\d+)\)(?: (.*))?$")
_KIND = {"ob": "ob", "cob": "ob", "fn": "fn", "cfn": "fn"}  # the others name files
# the memory allocators: their work depends on the heap's state, which differs from process to
# process (glibc's malloc.c; Numba's runtime and NumPy's allocation cache)
ALLOCATOR_FILE = re.compile(r"malloc/(malloc|arena|hooks)\.c$")
ALLOCATOR_FUNCTION = re.compile(
    r"(NRT_MemInfo_alloc\w*|NRT_Allocate\w*|NRT_Free|NRT_MemInfo_new\w*|NRT_dealloc"
    r"|nrt_internal_\w*|default_(malloc|calloc|realloc|free)|PyDataMem_User\w+"
    r"|_?npy_(alloc|free)_cache\w*)"
)


@dataclasses.dataclass(frozen=True)
class Dump:
    """A callgrind dump: ``costs``, the exclusive instructions of each (object, file,
    function), and ``calls``, each call edge's (caller, callee, inclusive instructions)."""

    costs: dict
    calls: list

    @property
    def total(self):
        return sum(self.costs.values())


def parse_dump(path):
    """The :class:`Dump` of a callgrind output file, checked to add up to its ``totals``
    line (object: the executable or shared library, ``???`` for code without one, as Numba's;
    names compressed as ``(id)`` resolved)."""
    names = {"ob": {}, "fn": {}, "fl": {}}
    costs, edges, total = {}, [], None
    current = {"ob": None, "fl": None, "fn": None}
    callee = {}
    after_call = False
    with open(path) as file:
        for line in file:
            head = line[:1]
            if head.isdigit() or head in "+-*":
                fields = line.split()
                key = (current["ob"], current["fl"], current["fn"])
                if after_call:  # the inclusive cost of the call just described
                    after_call = False
                    target = (
                        callee.get("ob", current["ob"]),
                        callee.get("fl", current["fl"]),
                        callee.get("fn"),
                    )
                    edges.append((key, target, int(fields[1])))
                    callee = {}
                elif len(fields) >= 2:
                    costs[key] = costs.get(key, 0) + int(fields[1])
            elif line.startswith("calls="):
                after_call = True
            elif line.startswith("totals:"):
                total = int(line.split()[1])
            else:
                match = _NAME.match(line.rstrip("\n"))
                if match is None:
                    continue
                field, identifier, name = match.groups()
                kind = _KIND.get(field, "fl")
                if name is not None:
                    names[kind][identifier] = name
                resolved = names[kind].get(identifier, f"({identifier})")
                if field in ("ob", "fn", "fl"):
                    current[field] = resolved
                elif field in ("cob", "cfn"):
                    callee[kind] = resolved
                elif field in ("cfi", "cfl"):
                    callee["fl"] = resolved
    if total is None:
        raise ValueError(f"{path}: no totals line (not a callgrind dump?)")
    if sum(costs.values()) != total:
        raise ValueError(f"{path}: the costs do not add up to the dump's total")
    return Dump(costs, edges)


def interpreter_object(name, executable=None):
    """Whether object file ``name`` is the Python interpreter (``libpython*`` or the
    executable itself)."""
    executable = os.path.realpath(executable or sys.executable)
    base = os.path.basename(name)
    return base.startswith("libpython") or os.path.realpath(name) == executable


def _excluded(key):
    obj, source, function = key
    return (
        interpreter_object(obj or "")
        or bool(ALLOCATOR_FILE.search(source or ""))
        or bool(ALLOCATOR_FUNCTION.fullmatch(function or ""))
    )


def _libc(obj):
    return os.path.basename(obj or "").startswith("libc.")


def kernel_count(dump):
    """The instructions of ``dump`` (:func:`parse_dump`) outside the Python interpreter and
    the memory allocators, less the C library's work they call for (the interpreter's
    ``memset`` of a new frame, ``calloc``'s): the kernels' own work."""
    inside = sum(count for key, count in dump.costs.items() if not _excluded(key))
    called = sum(
        count
        for caller, callee, count in dump.calls
        if _excluded(caller) and _libc(callee[0]) and not _excluded(callee)
    )
    return inside - called


def measure(names=None, *, calls=CALLS, valgrind=None, timeout=3600):
    """Instructions per call of each benchmark of ``names`` (default: all), counted in one
    Valgrind process (see the module docstring): a DataFrame with ``benchmark``,
    ``compiled_instructions`` (per call, a float: the dump's count outside the Python
    interpreter over ``calls``: the same in every process), ``instructions`` (everything,
    the interpreter's included) and ``calls``.
    ``ValueError`` when Valgrind is missing or a name is unknown; ``RuntimeError`` with
    Valgrind's output when the counted process fails."""
    known = benchmarks()
    names = list(known) if names is None else list(names)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown benchmark {unknown[0]!r}")
    if not isinstance(calls, int) or isinstance(calls, bool) or calls < 1:
        raise ValueError(f"calls must be an integer >= 1, got {calls!r}")
    valgrind = valgrind or valgrind_path()
    if valgrind is None:
        raise ValueError("valgrind is not installed (Debian: apt-get install valgrind)")
    child = [sys.executable, "-m", "optbench.instructions", json.dumps([names, calls])]
    env = _environment()
    # natively first: Numba's cache then holds every kernel for CPU_NAME
    subprocess.run(child, env=env, check=True, timeout=timeout, capture_output=True)
    with tempfile.TemporaryDirectory(prefix="optbench-callgrind-") as directory:
        out = os.path.join(directory, "callgrind.out")
        command = [
            valgrind,
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            *child,
        ]
        done = subprocess.run(command, env=env, timeout=timeout, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"the counted process failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
            )
        dumps = [parse_dump(f"{out}.{i}") for i in range(1, len(names) + 1)]
    return pd.DataFrame(
        {
            "benchmark": names,
            "kernel_instructions": [kernel_count(dump) / calls for dump in dumps],
            "instructions": [dump.total / calls for dump in dumps],
            "calls": calls,
        }
    )


def determinism(table):
    """Per benchmark of ``table`` (rows of :func:`measure` from several processes, a
    ``process`` column): the smallest and largest kernel count per call, the number of
    distinct kernel counts, and the same for the total count."""
    rows = []
    for name, group in table.groupby("benchmark", sort=False):
        kernel, total = group["kernel_instructions"], group["instructions"]
        rows.append(
            {
                "benchmark": name,
                "kernel_instructions": kernel.min(),
                "kernel_max": kernel.max(),
                "kernel_distinct": kernel.nunique(),
                "instructions": total.min(),
                "instructions_max": total.max(),
                "instructions_distinct": total.nunique(),
                "processes": len(group),
            }
        )
    return pd.DataFrame(rows)


if __name__ == "__main__":
    _child(*json.loads(sys.argv[1]))
