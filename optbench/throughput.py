"""How fast the kernels run, against the machine's memory bandwidth and against their peers.

:func:`measure` times, in one process, every optimizer of :mod:`optbench.registry` (default
options, float32 and float64, one flat array and 100 arrays of the same total) and the
normalization layers (forward then backward), next to their peers (:mod:`optbench.peers`: the
NumPy reference, a careful in-place NumPy version and, when torch is importable,
``torch.optim`` for-loop / foreach / fused and torch's ATen normalization kernels) and to the
STREAM kernels of :mod:`optbench.bandwidth` at the same working-set size; and one training
step of whole networks (``digits_mlp``, ``mnist1d_cnn``, ``modular_addition``: forward, loss,
backward, Adam), optbench's next to the same network, loss and optimizer in torch
(:mod:`optbench.torch_models`). It returns one row per case (implementation x case x dtype x
size x layout).

Method
------
* Cases are measured in groups that share their data: one group per (case, dtype, size) holds
  every implementation and layout of it and the STREAM kernels at its working set. Within a
  group the cases are timed round-robin, ``repeats`` rounds, so that drift of the machine
  (frequency, other processes) affects every case alike.
* A round times a batch of consecutive calls of one case lasting at least
  ``min_batch_seconds`` (the batch length is fixed per case before the first round), each
  call on its own. Before each batch the process sleeps ``settle_seconds``, so that the worker
  threads of the previous case's runtime (Numba's and torch's OpenMP pools both spin for about
  4 ms after a parallel region) stop competing for the cores, and makes one untimed call that
  wakes the case's own threads and warms the caches: the timed calls are hot.
* The reported time is the median over all timed calls of all rounds, with the 25th, 75th and
  90th percentiles: on a shared machine a call is now and then preempted for a scheduler time
  slice (several ms), which would dominate a mean; the 90th percentile shows how often.
* Every function is compiled (or loaded from Numba's cache) and called once before any timing.
* Numba and torch run ``threads`` threads each (``numba.set_num_threads``,
  ``torch.set_num_threads``); the previous settings are restored afterwards. A training step
  of optbench runs its matrix products on one BLAS thread, as :mod:`optbench.runner` trains
  (two spinning thread pools on the same cores slow each other down; see the runner).
* The layers allocate their outputs at every call, as torch's do. With glibc's default malloc
  settings, whether those megabytes are handed back to the kernel when freed (and faulted in
  again, page by page, at the next call) depends on what else the heap holds: a LayerNorm
  forward+backward at (256, 1024) float32 took 950 us with 540 page faults per call in a
  fresh process, 200 us without them. :func:`measure` therefore asks malloc to keep freed
  memory (:func:`keep_freed_memory`, for the rest of the process), so that every
  implementation is timed in the steady state of a training loop; the ``malloc`` column
  says whether it could.

Byte model (bytes that must move per call)
------------------------------------------
An optimizer step reads the parameter, the gradient and each state buffer in use, and writes
the parameter and each state buffer back: ``(3 + 2 s) n w`` bytes for ``n`` elements of
``w`` bytes with ``s`` state buffers. At the registry's default options:

==========================================  ===  =========================
optimizer                                    s   words per element
==========================================  ===  =========================
sgd (no momentum)                            0   3: read p, g; write p
adagrad, rmsprop, lion                       1   5: + read/write 1 state
adam, adamw, adamax, radam, nadam, adabound  2   7: + read/write m and v
==========================================  ===  =========================

A normalization layer forward then backward reads x and writes y, then reads dy and x and
writes dx: ``5 n w`` bytes for an input of ``n`` elements (parameters and per-row or
per-column statistics are negligible). BatchNorm's statistics run down the columns, so an
input that does not fit in cache is read twice in each direction (statistics or sums first,
then the element-wise pass): 8 words instead of 5, at most 5/8 of the roofline.

STREAM kernels: see :func:`optbench.bandwidth.bytes_moved`.

The roofline
------------
A row's roofline is the rate of a STREAM-style kernel with the same passes over arrays of the
same size and dtype (:func:`optimizer_passes`, from the spec's state declaration or its
``traffic``; ``NORM_PASSES`` for the layers): for Adam one pass reading one array and updating
three in place, for a layer one pass reading one array and writing another, then one reading
two and writing one (:func:`optbench.bandwidth.make_pattern_call`). A DRAM's rate depends on
the mix of reads and writes, so one kernel cannot stand for every pattern. The kernel of a
pattern is built once per dtype and size and timed, serial and parallel, in every group that
needs it (Adam, AdamW and NAdam share theirs), round-robin with the group's cases; in each
round the roofline is the better of its two batches, a limit no implementation of the
pattern should beat, and a row's fraction is the median over rounds of the roofline's time
over the row's. The machine's memory rate drifts by tens of percent over minutes on a shared
machine; pairing each row with the roofline of the same round takes the drift out of the
ratio. ``roofline`` rows report the pattern kernels themselves.

Columns
-------
group
    The cases measured side by side, e.g. "adam float32 1000000" (ratios are taken within it).
case, kind
    "adam", "layer_norm", "stream update", "mnist1d_cnn"...; "optimizer", "norm", "stream"
    or "training".
implementation
    "optbench", a peer ("numpy reference", "numpy in-place", "numpy newton-schulz" (Muon's
    matrix products alone), "torch for-loop", "torch foreach", "torch fused", "torch"), or
    "numba serial" / "numba parallel" (STREAM).
dtype, n, layout, threads
    n counts elements (parameters in all, the input, or one STREAM array); layout is "flat",
    "100 arrays", a shape such as "4096x1024", or for a training step "batch 32" (its ``n``:
    the network's parameters; its bytes, GB/s and roofline: NaN).
mode
    "hot", or for :func:`dispatch_latency` "after sleep" and "after work".
time_s, time_p25_s, time_p75_s, time_p90_s
    Median seconds per call and its percentiles.
sustained_s
    The fastest batch's median call (:func:`sustained_time`): the best the row sustained.
calls_per_batch, rounds, bytes, working_set_bytes
    ``bytes`` per call by the byte model above.
elements_per_s, gbps, roofline_gbps, roofline_fraction
    ``n / time_s``; ``bytes / time_s / 1e9``; the roofline of the row's passes at its size
    (below); the median over the group's rounds of the roofline's time over the row's in
    the same round, at most 1 up to noise: above ``ROOFLINE_LIMIT`` (1.05) a measurement
    warning (:func:`roofline_warnings`).
vs_<peer>, vs_flat
    The peer's time divided by this row's, in the same group (above 1 this row is faster);
    for the 100-array layout, the same implementation's time on one flat array divided by
    this row's.
cpu, python, numpy, numba, torch, numba_threading_layer, malloc
    The environment, the same on every row (``malloc``: see :func:`keep_freed_memory`).
"""

import contextlib
import ctypes
import gc
import math
import platform
import tempfile
import time
from dataclasses import dataclass, field

import numba
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from . import bandwidth, optim, peers, problems, registry, startup, torch_models, validation
from .spec import Pass

DTYPES = ("float32", "float64")
SIZES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000, 30_000_000)
QUICK_SIZES = (1_000, 100_000, 1_000_000)
N_ARRAYS = 100
LAYOUTS = ("flat", f"{N_ARRAYS} arrays")
NORM_SHAPES = ((32, 1024), (256, 1024), (512, 768), (4096, 1024), (4096, 4096))
QUICK_NORM_SHAPES = ((32, 1024), (512, 768))
OPTIMIZER_PEERS = (
    "numpy reference",
    "numpy in-place",
    "numpy newton-schulz",
    "torch for-loop",
    "torch foreach",
    "torch fused",
)
NORM_PEERS = ("numpy reference", "numpy in-place", "torch")
TRAINING_PROBLEMS = torch_models.TRAINING_PROBLEMS
TRAINING_BATCH_SIZES = (32,)
QUICK_TRAINING_BATCH_SIZES = (32,)
PEERS = tuple(dict.fromkeys(OPTIMIZER_PEERS + NORM_PEERS))
STREAM_KERNELS = bandwidth.KERNELS
# a layer forward (read x, write y) then backward (read dy and x, write dx): 5 words
NORM_PASSES = (Pass(reads=1, writes=1), Pass(reads=2, writes=1))
# a fraction of the roofline above this is a measurement warning, not a result
ROOFLINE_LIMIT = 1.05
# what a stored measurement was made with: a report measures again when it changes
METHOD = "roofline of each access pattern, paired by round"
LATENCY_MODES = ("hot", "after sleep", "after work")
LATENCY_IMPLEMENTATIONS = ("optbench serial", "optbench parallel", "optbench", "torch fused")
COLUMNS = (
    "group",
    "case",
    "kind",
    "implementation",
    "dtype",
    "n",
    "layout",
    "threads",
    "mode",
    "time_s",
    "time_p25_s",
    "time_p75_s",
    "time_p90_s",
    "sustained_s",
    "calls_per_batch",
    "rounds",
    "bytes",
    "working_set_bytes",
    "elements_per_s",
    "gbps",
    "roofline_gbps",
    "roofline_fraction",
)
MAX_CALLS_PER_BATCH = 100_000
# a batch's time is its median call: with 3 calls one outlier cannot set it
MIN_CALLS_PER_BATCH = 3
KEPT_FREED_BYTES = 1 << 30


@dataclass
class Case:
    """One thing to time: ``call()`` runs it once; ``bytes`` is what a call must move."""

    case: str
    kind: str
    implementation: str
    dtype: str
    n: int
    layout: str
    bytes: int
    working_set_bytes: int
    call: object
    group: str = ""
    samples: list = field(default_factory=list)
    calls_per_batch: int = 1
    rounds: int = 0
    passes: tuple = ()
    batch_medians: list = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------------------------
def cpu_model():
    """The CPU's model name from /proc/cpuinfo, or what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def keep_freed_memory():
    """Ask glibc's malloc to keep up to ``KEPT_FREED_BYTES`` of freed memory; True if it did.

    Sets ``M_MMAP_THRESHOLD`` (blocks up to that size come from the heap, not from their own
    mapping, which ``free`` would unmap) and ``M_TRIM_THRESHOLD`` (the heap is not shrunk
    below it). The process then reuses freed pages instead of faulting new ones in, at the cost
    of holding up to 1 GiB it no longer uses. The settings last for the process's lifetime;
    other C libraries (musl, macOS, Windows) are left alone and give False.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, KEPT_FREED_BYTES)) and bool(
        mallopt(m_trim_threshold, KEPT_FREED_BYTES)
    )


_FREED_MEMORY_KEPT = False


def environment(torch=None):
    """Versions and CPU, recorded on every row of :func:`measure`'s result."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = ""
    return {
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": "" if torch is None else torch.__version__,
        "numba_threading_layer": layer,
        "malloc": "freed memory kept" if _FREED_MEMORY_KEPT else "default",
    }


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------
def _names(name, values, allowed):
    values = tuple(values)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"{name}: unknown {unknown}; choose from {', '.join(allowed)}")
    if not values:
        raise ValueError(f"{name} is empty")
    return values


def _sizes(sizes):
    result = []
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int | float | np.integer | np.floating):
            raise TypeError(f"sizes must be numbers of elements, got {size!r}")
        if not (math.isfinite(size) and size >= 1 and float(size) == int(size)):
            raise ValueError(f"sizes must be whole numbers >= 1, got {size!r}")
        result.append(int(size))
    if not result:
        raise ValueError("sizes is empty")
    return tuple(result)


def _shapes(shapes):
    result = []
    for shape in shapes:
        if not (
            isinstance(shape, tuple | list)
            and len(shape) == 2
            and all(isinstance(d, int | np.integer) and d >= 2 for d in shape)
        ):
            raise ValueError(f"norm_shapes must be pairs (rows, features) >= 2, got {shape!r}")
        result.append((int(shape[0]), int(shape[1])))
    return tuple(result)


def _threads(threads):
    threads = validation.integer("threads", threads, 1)
    if threads > numba.config.NUMBA_NUM_THREADS:
        raise ValueError(
            f"threads must be <= NUMBA_NUM_THREADS ({numba.config.NUMBA_NUM_THREADS}), "
            f"got {threads}; set the environment variable NUMBA_NUM_THREADS to use more"
        )
    return threads


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------
def split_sizes(total, n_arrays):
    """Sizes of ``n_arrays`` arrays summing to ``total``, as even as possible."""
    base, extra = divmod(total, n_arrays)
    return [base + (i < extra) for i in range(n_arrays)]


def matrix_shape(size, max_rows=256):
    """A matrix of ``size`` elements, ``(rows, size // rows)`` with ``rows`` the largest divisor
    of ``size`` up to ``min(max_rows, sqrt(size))``: the shape of a layer for an optimizer of
    matrices (Muon), whose Newton-Schulz cost grows with the rows squared."""
    rows = max(d for d in range(1, min(max_rows, math.isqrt(size)) + 1) if size % d == 0)
    return rows, size // rows


def _model(total, layout, dtype, rng, matrices=False):
    sizes = [total] if layout == "flat" else split_sizes(total, N_ARRAYS)
    shapes = [matrix_shape(size) if matrices else (size,) for size in sizes]
    params = [rng.standard_normal(shape, dtype=dtype) for shape in shapes]
    grads = [rng.standard_normal(shape, dtype=dtype) for shape in shapes]
    return params, grads


def optimizer_passes(optimizer):
    """The passes of a step of ``optimizer`` over its arrays (a tuple of :class:`spec.Pass`):
    the spec's ``traffic`` where it declares one (a spec with a reduce pass), else one pass
    that reads the gradient and updates the parameter and each state buffer in use. Raises
    ``TypeError`` naming the spec when its ``traffic`` gives anything else."""
    return optimizer.spec.passes(optimizer.param_groups[0], optimizer.params[0].shape)


def optimizer_words(optimizer):
    """Words moved per element by a step of ``optimizer``: the words of its passes
    (:func:`optimizer_passes`): 3 + 2 per state buffer for one element-wise pass."""
    return sum(p.words for p in optimizer_passes(optimizer))


def _optimizer_cases(info, dtype, n, layouts, wanted, torch, rng):
    cases, itemsize = [], np.dtype(dtype).itemsize
    for layout in layouts:
        params, grads = _model(n, layout, dtype, rng, matrices=not info.takes((n,)))
        optimizer = optim.make(info, params)
        optimizer.step(grads)  # compiles, or loads from Numba's cache
        passes = optimizer_passes(optimizer)
        words = sum(p.words for p in passes)
        options = peers.optimizer_options(optimizer)
        common = {
            "case": info.name,
            "kind": "optimizer",
            "dtype": dtype,
            "n": n,
            "layout": layout,
            "bytes": words * n * itemsize,
            # parameter, gradient and the (words - 3) / 2 state buffers
            "working_set_bytes": (words + 1) // 2 * n * itemsize,
            "passes": passes,
        }
        cases.append(
            Case(implementation="optbench", call=lambda o=optimizer, g=grads: o.step(g), **common)
        )
        if "numpy reference" in wanted:
            reference = peers.ReferenceOptimizer(info, params, options)
            reference.step(grads)
            cases.append(
                Case(
                    implementation="numpy reference",
                    call=lambda o=reference, g=grads: o.step(g),
                    **common,
                )
            )
        if "numpy in-place" in wanted and info.inplace_peer is not None:
            inplace = peers.InplaceOptimizer(info, params, options)
            inplace.step(grads)
            cases.append(
                Case(
                    implementation="numpy in-place",
                    call=lambda o=inplace, g=grads: o.step(g),
                    **common,
                )
            )
        matrices = all(g.ndim == 2 for g in grads)
        if "numpy newton-schulz" in wanted and "ns_steps" in options and matrices:
            products = peers.NewtonSchulzProducts(grads, options)
            products.step()
            cases.append(Case(implementation="numpy newton-schulz", call=products.step, **common))
        for implementation in peers.TORCH_IMPLEMENTATIONS:
            name = f"torch {implementation}"
            if torch is None or name not in wanted:
                continue
            torch_opt = peers.torch_optimizer(torch, info, params, grads, options, implementation)
            if torch_opt is not None:
                cases.append(Case(implementation=name, call=torch_opt.step, **common))
    return cases


def _norm_cases(name, dtype, shape, wanted, torch, rng):
    x = rng.standard_normal(shape, dtype=dtype)
    dy = rng.standard_normal(shape, dtype=dtype)
    itemsize = np.dtype(dtype).itemsize
    common = {
        "case": name,
        "kind": "norm",
        "dtype": dtype,
        "n": x.size,
        "layout": f"{shape[0]}x{shape[1]}",
        "bytes": 5 * x.size * itemsize,
        "working_set_bytes": 4 * x.size * itemsize,
        "passes": NORM_PASSES,
    }
    cases = []
    for implementation in peers.NORM_IMPLEMENTATIONS:
        if implementation != "optbench" and implementation not in wanted:
            continue
        call = peers.norm_call(implementation, name, x, dy, torch=torch)
        if call is None:
            continue
        call()
        cases.append(Case(implementation=implementation, call=call, **common))
    return cases


def _training_cases(name, dtype, batch_size, wanted, torch):
    """One training step of problem ``name`` (forward, loss, backward, Adam), optbench's and,
    if wanted and importable, torch's (:func:`optbench.torch_models.training_steps`)."""
    problem = problems.make(name, dtype=dtype)
    implementations = ("optbench", "torch") if torch is not None and "torch" in wanted else ()
    steps = torch_models.training_steps(problem, batch_size, implementations or ("optbench",))
    n = sum(p.size for p in problem.initial_params())
    return [
        Case(
            case=name,
            kind="training",
            implementation=implementation,
            dtype=dtype,
            n=n,
            layout=f"batch {batch_size}",
            bytes=math.nan,
            working_set_bytes=0,
            call=step,
        )
        for implementation, step in steps.items()
    ]


def _roofline_cases(passes, dtype, n, threads):
    """The roofline of a kernel of ``passes`` over ``n`` elements: the STREAM-style kernel of
    the same passes (:func:`bandwidth.make_pattern_call`), serial and, with more than one
    thread, parallel."""
    label = bandwidth.pattern_label(passes)
    return [
        Case(
            case="roofline",
            kind="roofline",
            implementation="numba parallel" if parallel else "numba serial",
            dtype=dtype,
            n=n,
            layout=label,
            bytes=bandwidth.pattern_bytes(passes, n, dtype),
            working_set_bytes=bandwidth.pattern_arrays(passes) * n * np.dtype(dtype).itemsize,
            call=bandwidth.make_pattern_call(passes, n, dtype, parallel),
            group=f"roofline {label} {dtype} {n}",
            passes=tuple(passes),
        )
        for parallel in ((False, True) if threads > 1 else (False,))
    ]


def sustained_time(batch_medians):
    """A row's fastest batch: the least of its batches' median calls (``batch_medians``, one
    per timed batch), the best it sustained over a batch (the ``sustained_s`` column; the
    roofline fraction pairs rounds instead, :func:`_with_roofline`)."""
    return float(np.min(batch_medians))


def _stream_cases(working_set_bytes, dtype, threads, kernels):
    cases = []
    for kernel in kernels:
        n = bandwidth.elements_for_working_set(kernel, working_set_bytes, dtype)
        for parallel in (False, True) if threads > 1 else (False,):
            cases.append(
                Case(
                    case=f"stream {kernel}",
                    kind="stream",
                    implementation="numba parallel" if parallel else "numba serial",
                    dtype=dtype,
                    n=n,
                    layout="flat",
                    bytes=bandwidth.bytes_moved(kernel, n, dtype),
                    working_set_bytes=bandwidth.N_ARRAYS[kernel] * n * np.dtype(dtype).itemsize,
                    call=bandwidth.make_call(kernel, n, dtype, parallel),
                )
            )
    return cases


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------
def _calibrate(case, min_batch_seconds):
    """Fix the batch length from the median of three calls (one may stall): calls lasting
    ``min_batch_seconds``, at least ``MIN_CALLS_PER_BATCH``."""
    durations = []
    for _ in range(3):
        start = time.perf_counter()
        case.call()
        durations.append(time.perf_counter() - start)
    single = max(sorted(durations)[1], 1e-9)
    case.calls_per_batch = int(
        min(max(MIN_CALLS_PER_BATCH, math.ceil(min_batch_seconds / single)), MAX_CALLS_PER_BATCH)
    )


def _time_batch(case, settle_seconds):
    if settle_seconds:
        time.sleep(settle_seconds)
    call, clock, samples = case.call, time.perf_counter, case.samples
    call()
    first = len(samples)
    for _ in range(case.calls_per_batch):
        start = clock()
        call()
        samples.append(clock() - start)
    case.batch_medians.append(float(np.median(samples[first:])))
    return case.batch_medians[-1]


def _run_rounds(cases, repeats, min_batch_seconds, settle_seconds):
    """Time every case ``repeats`` times, round-robin, rotating the starting case. A case
    timed before (a roofline shared by groups) keeps its batch length. Returns the rounds,
    each a dict ``id(case) -> that batch's median call``."""
    for case in cases:
        if not case.rounds:
            _calibrate(case, min_batch_seconds)
    rounds = []
    for round_index in range(repeats):
        shift = round_index % len(cases)
        timed = {}
        for case in cases[shift:] + cases[:shift]:
            timed[id(case)] = _time_batch(case, settle_seconds)
            case.rounds += 1
        rounds.append(timed)
    return rounds


def _rows(cases, threads, mode="hot"):
    rows = []
    for case in cases:
        samples = np.asarray(case.samples)
        median = float(np.median(samples))
        rows.append(
            {
                "group": case.group,
                "case": case.case,
                "kind": case.kind,
                "implementation": case.implementation,
                "dtype": case.dtype,
                "n": case.n,
                "layout": case.layout,
                "threads": threads,
                "mode": mode,
                "time_s": median,
                "time_p25_s": float(np.percentile(samples, 25)),
                "time_p75_s": float(np.percentile(samples, 75)),
                "time_p90_s": float(np.percentile(samples, 90)),
                "sustained_s": (
                    sustained_time(case.batch_medians) if case.batch_medians else math.nan
                ),
                "calls_per_batch": case.calls_per_batch,
                "rounds": case.rounds,
                "bytes": case.bytes,
                "passes": case.passes,
                "working_set_bytes": case.working_set_bytes,
                "elements_per_s": case.n / median,
                "gbps": case.bytes / median / 1e9,
            }
        )
    return rows


def _with_roofline(rows, cases, roofline_cases, rounds):
    """Each row's roofline and fraction, paired round by round with the kernel of its passes
    (``roofline_cases``, keyed by (passes, dtype, n)): in each of ``rounds`` the roofline's
    time is the better of its serial and parallel batches, and the row's fraction in that
    round the roofline's time over the row's. ``roofline_gbps``: the pattern's bytes over the
    median of the roofline's times; ``roofline_fraction``: the median of the fractions, so
    that a slow or fast phase of the machine, which lasts longer than a round, falls on both
    alike. NaN for a row without passes (the STREAM kernels, a training step)."""
    for row, case in zip(rows, cases, strict=True):
        row.pop("passes", None)
        key = (case.passes, case.dtype, case.n)
        roofline = fraction = math.nan
        if key in roofline_cases:
            limit = roofline_cases[key]
            paired = [
                (min(timed[id(c)] for c in limit), timed[id(case)])
                for timed in rounds
                if id(case) in timed and all(id(c) in timed for c in limit)
            ]
            best = np.median([roof for roof, _ in paired])
            roofline = bandwidth.pattern_bytes(case.passes, case.n, case.dtype) / best / 1e9
            fraction = float(np.median([roof / own for roof, own in paired]))
        row["roofline_gbps"] = roofline
        row["roofline_fraction"] = fraction
    return rows


def roofline_warnings(frame):
    """The rows above ``ROOFLINE_LIMIT`` of their roofline, one line each with the figures: a
    rate the roofline should bound, so a measurement to repeat, not a result."""
    over = frame[frame["roofline_fraction"] > ROOFLINE_LIMIT]
    return [
        f"{row.case} {row.dtype} {_format_size(row.n)} {row.layout}, {row.implementation}: "
        f"{row.gbps:.1f} GB/s against a roofline of {row.roofline_gbps:.1f} GB/s (median of "
        f"its rounds' fractions {row.roofline_fraction:.2f})"
        for row in over.itertuples()
    ]


def _slug(implementation):
    return implementation.replace("-", "_").replace(" ", "_")


def _with_ratios(frame):
    """``vs_<peer>`` (peer time / this time) within (case, dtype, n, layout, mode), and
    ``vs_flat`` (flat-layout time / this time) within (case, implementation, dtype, n, mode)."""
    if frame.empty:
        return frame
    keys = ["group", "case", "dtype", "n", "layout", "mode"]
    for peer in [p for p in PEERS if p in set(frame["implementation"])]:
        times = frame[frame["implementation"] == peer].set_index(keys)["time_s"]
        peer_time = frame.join(times.rename("peer_time"), on=keys)["peer_time"]
        frame[f"vs_{_slug(peer)}"] = peer_time / frame["time_s"]
    flat = frame[frame["layout"] == "flat"]
    flat_keys = ["group", "case", "implementation", "dtype", "n", "mode"]
    flat_time = frame.join(flat.set_index(flat_keys)["time_s"].rename("flat_time"), on=flat_keys)[
        "flat_time"
    ]
    frame["vs_flat"] = np.where(frame["layout"] == LAYOUTS[1], flat_time / frame["time_s"], np.nan)
    return frame


class _Threads:
    """Numba and torch at ``threads`` threads inside the block; previous counts restored."""

    def __init__(self, threads, torch):
        self.threads, self.torch = threads, torch

    def __enter__(self):
        self.numba_before = numba.get_num_threads()
        numba.set_num_threads(self.threads)
        if self.torch is not None:
            self.torch_before = self.torch.get_num_threads()
            self.torch.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc):
        numba.set_num_threads(self.numba_before)
        if self.torch is not None:
            self.torch.set_num_threads(self.torch_before)


def _finish(rows, torch):
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame = _with_ratios(frame)
    for key, value in environment(torch).items():
        frame[key] = value
    return frame


# --------------------------------------------------------------------------------------------
# the measurement
# --------------------------------------------------------------------------------------------
def measure(
    *,
    threads=2,
    optimizers=None,
    sizes=None,
    dtypes=DTYPES,
    layouts=LAYOUTS,
    norms=True,
    norm_names=peers.NORMS,
    norm_shapes=None,
    training=True,
    training_problems=TRAINING_PROBLEMS,
    training_batch_sizes=None,
    peer_names=PEERS,
    stream=(),
    latency=True,
    repeats=None,
    min_batch_seconds=None,
    settle_seconds=0.005,
    quick=False,
    seed=0,
    progress=None,
):
    """Time the kernels, their peers and the STREAM kernels; one row per case (see module doc).

    Parameters
    ----------
    threads : Numba and torch threads (default 2).
    optimizers : registry names (default: every optimizer).
    sizes : total elements of the optimizer cases (default ``SIZES``; ``QUICK_SIZES`` if quick).
    dtypes : subset of ("float32", "float64").
    layouts : subset of ("flat", "100 arrays").
    norms : time LayerNorm, BatchNorm (training, (N, C)) and RMSNorm forward + backward.
    norm_names : subset of ("layer_norm", "batch_norm", "rms_norm").
    norm_shapes : (rows, features) pairs (default ``NORM_SHAPES``; ``QUICK_NORM_SHAPES`` if
        quick).
    training : time one training step (forward, loss, backward, Adam) of whole networks.
    training_problems : subset of ``TRAINING_PROBLEMS``.
    training_batch_sizes : batch sizes of the training steps (default ``TRAINING_BATCH_SIZES``).
    peer_names : peers to time (default all; torch ones only when torch is importable).
    stream : McCalpin's STREAM kernels ("copy", "triad", "update") timed beside every group,
        for information (default none; the roofline is the kernel of each case's passes).
    latency : also add :func:`dispatch_latency` rows (Adam and SGD, float32).
    repeats : rounds per group (default 5; 3 if quick).
    min_batch_seconds : least duration of a timed batch (default 0.02; 0.005 if quick).
    settle_seconds : sleep before each batch (see module doc).
    seed : seed of the data.
    progress : ``progress(message)`` called before each group, or None.

    Returns
    -------
    pandas.DataFrame
    """
    threads = _threads(threads)
    dtypes = _names("dtypes", dtypes, DTYPES)
    layouts = _names("layouts", layouts, LAYOUTS)
    names = registry.names()
    optimizers = () if optimizers is not None and not optimizers else optimizers
    optimizers = names if optimizers is None else tuple(optimizers)
    if optimizers:
        optimizers = _names("optimizers", optimizers, names)
    sizes = _sizes(sizes if sizes is not None else QUICK_SIZES if quick else SIZES)
    norm_names = _names("norm_names", norm_names, peers.NORMS) if norms else ()
    norm_shapes = _shapes(
        norm_shapes if norm_shapes is not None else QUICK_NORM_SHAPES if quick else NORM_SHAPES
    )
    training_problems = (
        _names("training_problems", training_problems, TRAINING_PROBLEMS) if training else ()
    )
    training_batch_sizes = tuple(
        validation.integer("training_batch_sizes", size, 1)
        for size in (
            training_batch_sizes
            if training_batch_sizes is not None
            else QUICK_TRAINING_BATCH_SIZES
            if quick
            else TRAINING_BATCH_SIZES
        )
    )
    peer_names = tuple(peer_names)
    if peer_names:
        _names("peer_names", peer_names, PEERS)
    stream = tuple(stream)
    if stream:
        _names("stream", stream, STREAM_KERNELS)
    repeats = validation.integer(
        "repeats", repeats if repeats is not None else 3 if quick else 5, 1
    )
    min_batch_seconds = validation.real(
        "min_batch_seconds",
        min_batch_seconds if min_batch_seconds is not None else 0.005 if quick else 0.02,
        low_open=True,
    )
    settle_seconds = validation.real("settle_seconds", settle_seconds)
    torch = _import_torch() if any(p.startswith("torch") for p in peer_names) else None
    global _FREED_MEMORY_KEPT
    _FREED_MEMORY_KEPT = _FREED_MEMORY_KEPT or keep_freed_memory()
    rng = np.random.default_rng(seed)
    groups = (
        [("optimizer", name, dtype, n) for name in optimizers for dtype in dtypes for n in sizes]
        + [
            ("norm", name, dtype, shape)
            for name in norm_names
            for dtype in dtypes
            for shape in norm_shapes
        ]
        + [
            ("training", name, "float32", size)
            for name in training_problems
            for size in training_batch_sizes
        ]
    )
    rows = []
    with _Threads(threads, torch):
        # groups of one working-set class (dtype and size) in a row, so that a roofline is
        # measured across them and freed after; the rows are put back in order at the end
        order = sorted(range(len(groups)), key=lambda i: _size_class(groups[i]))
        roofline_cases, class_rows, class_rounds, current = {}, [], [], None
        for step, index in enumerate(order):
            kind, name, dtype, size = groups[index]
            if _size_class(groups[index]) != current:
                rows += _finish_class(class_rows, roofline_cases, class_rounds, threads)
                roofline_cases, class_rows, class_rounds = {}, [], []
                current = _size_class(groups[index])
                gc.collect()
            if progress is not None:
                progress(f"[{step + 1}/{len(groups)}] {name} {dtype} {size}")
            blas = contextlib.nullcontext()
            if kind == "optimizer":
                cases = _optimizer_cases(
                    registry.get(name), dtype, size, layouts, peer_names, torch, rng
                )
            elif kind == "norm":
                cases = _norm_cases(name, dtype, size, peer_names, torch, rng)
            else:
                # as optbench.runner trains: Numba's threads for the layers, one BLAS thread
                blas = threadpool_limits(1, user_api="blas")
                cases = _training_cases(name, dtype, size, peer_names, torch)
            label = size
            if kind == "norm":
                label = f"{size[0]}x{size[1]}"
            elif kind == "training":
                label = f"batch {size}"
            if kind != "training":
                cases += _stream_cases(cases[0].working_set_bytes, dtype, threads, stream)
            for case in cases:
                case.group = f"{name} {dtype} {label}"
            for key in dict.fromkeys((c.passes, c.dtype, c.n) for c in cases if c.passes):
                if key not in roofline_cases:
                    roofline_cases[key] = _roofline_cases(*key, threads)
                cases += roofline_cases[key]
            with blas:
                rounds = _run_rounds(cases, repeats, min_batch_seconds, settle_seconds)
            class_rounds += rounds
            shared = {id(c) for shared in roofline_cases.values() for c in shared}
            own = [c for c in cases if id(c) not in shared]
            for row in _with_roofline(_rows(own, threads), own, roofline_cases, rounds):
                class_rows.append((index, row))
            del cases, own
        rows += _finish_class(class_rows, roofline_cases, class_rounds, threads)
        rows.sort(key=lambda item: item[0])  # stable: each group's rows stay in order
        rows = [row for _, row in rows]
        gc.collect()
        if latency:
            rows += _latency_rows(
                threads=threads,
                optimizers=("adam", "sgd"),
                sizes=(10_000, 100_000, 1_000_000),
                dtype="float32",
                modes=LATENCY_MODES,
                idle_seconds=0.005,
                samples=10 if quick else 20,
                rounds=repeats,
                torch=torch,
                progress=progress,
            )
    return _finish(rows, torch)


def _size_class(group):
    """The working-set class of a group: its kind, dtype and size."""
    kind, _, dtype, size = group
    return ("optimizer", "norm", "training").index(kind), dtype, size


def _finish_class(class_rows, roofline_cases, class_rounds, threads):
    """The rows of one working-set class, ``(group index, row)`` pairs, and after its last
    group the roofline kernels' own rows, paired over every round of the class."""
    if not class_rows:
        return []
    last = max(index for index, _ in class_rows)
    kernels = [case for cases in roofline_cases.values() for case in cases]
    own = _with_roofline(_rows(kernels, threads), kernels, roofline_cases, class_rounds)
    return class_rows + [(last, row) for row in own]


# --------------------------------------------------------------------------------------------
# dispatch: hot and idle-then-call latency
# --------------------------------------------------------------------------------------------
def _between_calls(mode, idle_seconds, buffers):
    if mode == "after sleep":
        time.sleep(idle_seconds)
    elif mode == "after work":
        # single-threaded memory work, as a forward/backward pass between optimizer steps:
        # Numba's threads go idle and the caches are refilled with other data
        deadline = time.perf_counter() + idle_seconds
        while time.perf_counter() < deadline:
            np.add(buffers[0], 1.0, out=buffers[1])


def dispatch_latency(
    *,
    threads=2,
    optimizers=("adam", "sgd"),
    sizes=(10_000, 100_000, 1_000_000),
    dtype="float32",
    modes=LATENCY_MODES,
    idle_seconds=0.005,
    samples=20,
    rounds=5,
    torch=None,
    progress=None,
):
    """Time single optimizer steps, hot and after the threads idled, for the dispatch choice.

    Implementations: ``optbench serial`` and ``optbench parallel`` (the kernels forced with
    ``dispatch=``), ``optbench`` (the default ``dispatch="auto"``) and ``torch fused`` (when
    ``torch`` is given, or importable). Modes: ``hot`` (back-to-back steps), ``after sleep``
    (``idle_seconds`` of sleep before each step) and ``after work`` (``idle_seconds`` of
    single-threaded NumPy memory work before each step). Each (implementation, mode) pair has
    its own optimizer; each step is timed on its own. Per round every pair takes ``samples``
    steps, in the first round after as many untimed ones (which let ``"auto"`` settle), and
    rounds alternate the pairs.

    Returns a DataFrame with :func:`measure`'s columns (``calls_per_batch`` is ``samples``,
    ``time_p90_s`` shows the stalls).
    """
    threads = _threads(threads)
    optimizers = _names("optimizers", optimizers, registry.names())
    sizes = _sizes(sizes)
    modes = _names("modes", modes, LATENCY_MODES)
    idle_seconds = validation.real("idle_seconds", idle_seconds, low_open=True)
    samples = validation.integer("samples", samples, 1)
    rounds = validation.integer("rounds", rounds, 1)
    if torch is None:
        torch = _import_torch()
    rows = _latency_rows(
        threads=threads,
        optimizers=optimizers,
        sizes=sizes,
        dtype=_names("dtype", [dtype], DTYPES)[0],
        modes=modes,
        idle_seconds=idle_seconds,
        samples=samples,
        rounds=rounds,
        torch=torch,
        progress=progress,
    )
    return _finish(rows, torch)


def _latency_rows(
    *, threads, optimizers, sizes, dtype, modes, idle_seconds, samples, rounds, torch, progress
):
    buffers = (np.ones(1 << 21), np.empty(1 << 21))
    rng = np.random.default_rng(0)
    rows = []
    with _Threads(threads, torch):
        for name in optimizers:
            info = registry.get(name)
            for n in sizes:
                if progress is not None:
                    progress(f"latency {name} {dtype} {n}")
                cases = _latency_cases(info, dtype, n, modes, torch, rng)
                for case, _ in cases:
                    case.group = f"latency {name} {dtype} {n}"
                    case.calls_per_batch = samples
                for round_index in range(rounds):
                    for case, mode in cases:
                        case.rounds += 1
                        for _ in range(samples if round_index == 0 else 0):
                            _between_calls(mode, idle_seconds, buffers)
                            case.call()
                        for _ in range(samples):
                            _between_calls(mode, idle_seconds, buffers)
                            start = time.perf_counter()
                            case.call()
                            case.samples.append(time.perf_counter() - start)
                for case, mode in cases:
                    rows += _rows([case], threads, mode)
                del cases
                gc.collect()
    return rows


def _latency_cases(info, dtype, n, modes, torch, rng):
    params, grads = _model(n, "flat", dtype, rng, matrices=not info.takes((n,)))
    itemsize = np.dtype(dtype).itemsize
    cases = []
    for mode in modes:
        for implementation in LATENCY_IMPLEMENTATIONS:
            if implementation == "torch fused":
                if torch is None:
                    continue
                options = peers.optimizer_options(optim.make(info, [params[0][:1].copy()]))
                step = peers.torch_optimizer(torch, info, params, grads, options, "fused")
                if step is None:
                    continue
                call, words = step.step, None
            else:
                dispatch = {"optbench serial": "serial", "optbench parallel": "parallel"}
                optimizer = optim.make(info, params, dispatch=dispatch.get(implementation, "auto"))
                optimizer.step(grads)
                call, words = (lambda o=optimizer: o.step(grads)), optimizer_words(optimizer)
            if words is None:
                words = optimizer_words(optim.make(info, [params[0][:1].copy()]))
            case = Case(
                case=info.name,
                kind="optimizer",
                implementation=implementation,
                dtype=dtype,
                n=n,
                layout="flat",
                bytes=words * n * itemsize,
                working_set_bytes=(words + 1) // 2 * n * itemsize,
                call=call,
            )
            cases.append((case, mode))
    return cases


# --------------------------------------------------------------------------------------------
# start-up
# --------------------------------------------------------------------------------------------
def startup_times(optimizer="adam", *, timeout=600):
    """Start-up costs in seconds, each measured in a new Python process
    (:func:`optbench.startup.measure`).

    Returns a dict: ``import_s`` (``import optbench.optim, optbench.nn, optbench.registry``),
    ``first_step_compile_s`` (building ``optimizer`` and taking its first step, once over a
    float32 array and once over a float64 array of 1000 elements, serial kernels, with an empty
    Numba cache: compilation), ``first_step_cached_s`` (the same in a second process, loading
    the machine code from the cache), and ``first_parallel_step_compile_s`` /
    ``first_parallel_step_cached_s`` (the same with ``dispatch="parallel"``); wall-clock
    seconds, and the process's CPU seconds under the same names ending in ``_cpu_s`` (less
    sensitive to other processes on the machine). Numba's cache goes to a temporary directory
    (``NUMBA_CACHE_DIR``), removed afterwards.
    """
    target = f"optimizer:{registry.get(optimizer).name}"
    runs = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        seconds = startup.measure("import", cache_dir, timeout=timeout)
        runs["import"] = seconds["import_s"], seconds["import_cpu_s"]
        for dispatch, label in (("serial", "first_step"), ("parallel", "first_parallel_step")):
            for cache in ("compile", "cached"):
                seconds = startup.measure(target, cache_dir, dispatch=dispatch, timeout=timeout)
                runs[f"{label}_{cache}"] = seconds["first_calls_s"], seconds["first_calls_cpu_s"]
    result = {f"{key}_s": wall for key, (wall, _) in runs.items()}
    result.update({f"{key}_cpu_s": cpu for key, (_, cpu) in runs.items()})
    return result


# --------------------------------------------------------------------------------------------
# presentation
# --------------------------------------------------------------------------------------------
def _case_label(case, kind):
    """An optimizer's name, marked when it is unfused (its update is NumPy, not a kernel)."""
    if kind == "optimizer" and case in registry.names():
        return registry.get(case).label
    return case


def _format_time(seconds):
    if not math.isfinite(seconds):
        return ""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _format_fraction(fraction):
    """A fraction of the roofline, marked ``!`` above ``ROOFLINE_LIMIT`` (a warning)."""
    if not math.isfinite(fraction):
        return ""
    return f"{fraction:.2f}" + ("!" if fraction > ROOFLINE_LIMIT else "")


def _format_size(n):
    exponent = math.floor(math.log10(n)) if n > 0 else 0
    mantissa = n / 10**exponent
    return f"{mantissa:g}e{exponent}" if mantissa == int(mantissa) else f"{n:,}"


# The speed targets checked by :func:`targets` (float32, optbench rows, hot medians): a label,
# the rows it covers, the column compared and the least acceptable value.
TARGETS = (
    (
        "every element-wise optimizer, flat, N = 3e7: roofline",
        "optimizer",
        "flat",
        "n == 30_000_000 and case not in @two_pass and case not in @matrices",
        "roofline_fraction",
        0.90,
    ),
    (
        "every optimizer with a reduce pass, flat, N = 3e7: roofline, both passes",
        "optimizer",
        "flat",
        "n == 30_000_000 and case in @two_pass",
        "roofline_fraction",
        0.75,
    ),
    (
        "every optimizer of matrices, N >= 1e6: vs NumPy's Newton-Schulz products alone",
        "optimizer",
        None,
        "n >= 1_000_000 and case in @matrices",
        "vs_numpy_newton_schulz",
        1 / 1.2,
    ),
    (
        "every optimizer, flat, N = 3e7: vs torch fused",
        "optimizer",
        "flat",
        "n == 30_000_000",
        "vs_torch_fused",
        1.0,
    ),
    (
        "Adam and SGD, flat, N = 1e6: vs torch fused",
        "optimizer",
        "flat",
        "n == 1_000_000 and case in ('adam', 'sgd')",
        "vs_torch_fused",
        1.0,
    ),
    (
        "Adam and SGD, flat, N <= 1e5: vs torch fused",
        "optimizer",
        "flat",
        "n <= 100_000 and case in ('adam', 'sgd')",
        "vs_torch_fused",
        2.5,
    ),
    (
        "100 arrays totalling 1e4 to 1e5: vs torch fused",
        "optimizer",
        LAYOUTS[1],
        "10_000 <= n <= 100_000",
        "vs_torch_fused",
        10.0,
    ),
    (
        "100 arrays totalling 3e7: vs the flat array",
        "optimizer",
        LAYOUTS[1],
        "n == 30_000_000",
        "vs_flat",
        0.95,
    ),
    ("LayerNorm forward+backward: vs torch", "norm", None, "case == 'layer_norm'", "vs_torch", 1.5),
    (
        "Training step of an MLP (digits_mlp), batch 32: vs torch",
        "training",
        None,
        "case == 'digits_mlp' and layout == 'batch 32'",
        "vs_torch",
        1.5,
    ),
    (
        "Training step of the CNN and the transformer, batch 32: vs torch",
        "training",
        None,
        "case in ('mnist1d_cnn', 'modular_addition') and layout == 'batch 32'",
        "vs_torch",
        1.0,
    ),
    (
        "BatchNorm (training) forward+backward, (N, C): vs torch",
        "norm",
        None,
        "case == 'batch_norm'",
        "vs_torch",
        1.2,
    ),
)
# start-up targets, seconds (most): keys of startup_times
STARTUP_TARGETS = (
    ("import optbench", "import_s", 1.0),
    ("first use of an optimizer, both dtypes: compile", "first_step_compile_s", 2.0),
    ("first use of an optimizer, both dtypes: cached", "first_step_cached_s", 0.3),
)


def targets(frame, startup=None):
    """The measured value of every speed target that ``frame`` (rows of :func:`measure`) and
    ``startup`` (a dict of :func:`startup_times`) cover: one row per case with the target, the
    value and whether it is met. Only float32 optbench rows at the hot medians are compared,
    as the targets are stated; cases the frame does not cover are left out.
    """
    rows = frame[
        (frame["implementation"] == "optbench")
        & (frame["mode"] == "hot")
        & (frame["dtype"] == "float32")
        & ~frame["group"].str.startswith("latency ")
    ]
    out = []
    specs = registry.specs()
    names = {
        # several passes over the arrays: their traffic counts every pass
        "two_pass": [spec.name for spec in specs if spec.traffic is not None],
        "matrices": [spec.name for spec in specs if not spec.takes((1,))],
    }
    for label, kind, layout, query, column, least in TARGETS:
        if column not in rows:
            continue
        chosen = rows[rows["kind"] == kind]
        if layout is not None:
            chosen = chosen[chosen["layout"] == layout]
        chosen = chosen.query(query, local_dict=names)
        for _, row in chosen[chosen[column].notna()].iterrows():
            where = row["layout"]
            if kind == "optimizer":
                where = f"{_format_size(row['n'])} {where}"
            out.append(
                {
                    "target": label,
                    "case": f"{row['case']} {where}",
                    "goal": f">= {least:g}x" if column != "roofline_fraction" else f">= {least:g}",
                    "measured": round(float(row[column]), 2),
                    # above the roofline's limit: a measurement warning, not a target met
                    "met": bool(
                        row[column] >= least
                        and (column != "roofline_fraction" or row[column] <= ROOFLINE_LIMIT)
                    ),
                }
            )
    for label, key, most in STARTUP_TARGETS if startup else ():
        out.append(
            {
                "target": label,
                "case": "seconds",
                "goal": f"< {most:g} s",
                "measured": round(float(startup[key]), 3),
                "met": bool(startup[key] < most),
            }
        )
    return pd.DataFrame(out, columns=["target", "case", "goal", "measured", "met"])


def table(frame, *, latency=False, kinds=("optimizer", "norm"), implementations=None):
    """A readable summary of :func:`measure`'s rows, one line per row: median time and spread,
    GB/s, roofline fraction and the ratios to the peers present.

    latency : False for the throughput rows (hot, groups of :func:`measure`); True for the
        :func:`dispatch_latency` rows (every mode, with the 90th percentile).
    """
    in_latency = frame["group"].str.startswith("latency ")
    if latency:
        rows = frame[in_latency]
    else:
        rows = frame[~in_latency & (frame["mode"] == "hot") & frame["kind"].isin(kinds)]
    if implementations is not None:
        rows = rows[rows["implementation"].isin(implementations)]
    ratio_columns = [c for c in rows.columns if c.startswith("vs_") and rows[c].notna().any()]
    out = pd.DataFrame(
        {
            "case": [
                _case_label(case, kind)
                for case, kind in zip(rows["case"], rows["kind"], strict=True)
            ],
            "impl": rows["implementation"],
            "dtype": rows["dtype"],
            "n": [_format_size(n) for n in rows["n"]],
            "layout": rows["layout"],
        }
    )
    if latency:
        out["mode"] = rows["mode"]
    out["time"] = [_format_time(t) for t in rows["time_s"]]
    out["p25-p75"] = [
        f"{_format_time(a)}-{_format_time(b)}"
        for a, b in zip(rows["time_p25_s"], rows["time_p75_s"], strict=True)
    ]
    if latency:
        out["p90"] = [_format_time(t) for t in rows["time_p90_s"]]
    else:
        out["GB/s"] = rows["gbps"].round(1)
        out["roof"] = [_format_fraction(f) for f in rows["roofline_fraction"]]
    for column in ratio_columns:
        out[column] = rows[column].round(2)
    return out.reset_index(drop=True)
