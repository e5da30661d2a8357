"""Optimizers with the names, options, defaults and semantics of ``torch.optim``, for NumPy arrays.

::

    opt = optim.Adam(params, lr=1e-3)
    opt.step(grads)            # one fused kernel call updates every array in place
    sd = opt.state_dict()      # plain dict of arrays and numbers
    opt.load_state_dict(sd)    # exact round trip

``params`` is a list of float32/float64 C-contiguous writeable arrays, or a list of parameter
groups (dicts with ``"params"`` and per-group options) as in torch. Options are validated at
construction and again at every step (a schedule may change ``param_groups[i]["lr"]``), and
``step`` checks every gradient, before any array is touched.

The optimizer keeps the state of all arrays of one dtype side by side in one table (one row per
state buffer), and steps all of them with one compiled call: the Python cost of a step is a
handful of checks per array, whatever the arrays' sizes (fewer when ``grads`` holds the same
array objects as in the previous step).

Two options of every optimizer change how a step runs, not what it computes:
``dispatch="auto" | "serial" | "parallel"`` (serial kernel, Numba's threads, or, by default,
whichever the optimizer's own step times show faster: see :attr:`Optimizer.dispatch`), and
``flush_denormals=False`` (True treats subnormal numbers as zero inside the step, which removes
their slow path at the cost of flushing values below ~1e-38 in float32; see
:attr:`Optimizer.flush_denormals`).
"""

import itertools
import math
import numbers
import operator
import time
from types import MappingProxyType

import numba
import numpy as np
from numba.np.ufunc import parallel as numba_parallel

from .kernels import optimizers as kernels
from .kernels._fpenv import SUPPORTED as FLUSH_SUPPORTED

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
NONFINITE_POLICIES = ("propagate", "raise", "skip")
# Added to the global gradient norm before dividing, as torch.nn.utils.clip_grad_norm_ does.
CLIP_NORM_EPS = 1e-6

DISPATCH_MODES = ("auto", "serial", "parallel")
# Elements per work chunk, at most: small enough that two threads share a 1e5-element model
# evenly, large enough that per-chunk scalar set-up is negligible. An array longer than one
# chunk is cut into a multiple of CHUNK_MULTIPLE chunks of equal size (to one element): the
# parallel kernels give each thread an equal count of chunks, so 1e5 elements cut as
# 32768 + 32768 + 32768 + 1696 left one thread twice the work of the other (Adam, float32, 2
# threads: 34 us a step, against 19 us for 65536 elements in two equal chunks).
CHUNK_ELEMENTS = 1 << 15
CHUNK_MULTIPLE = 4
# Serial or parallel kernel, for the arrays of one dtype (a bucket) with dispatch="auto":
# below PARALLEL_MIN_ELEMENTS always serial (even with its threads awake, the pool costs more
# than it saves); from ALWAYS_PARALLEL_ELEMENTS always parallel (a serial step takes longer
# than the worst wake-up stall of the pool, about 4 ms); in between, the bucket's own step
# times decide (see _Dispatch): the threads' wake-up cost depends on what the program does
# between steps, which no fixed threshold can know.
PARALLEL_MIN_ELEMENTS = 1 << 16
ALWAYS_PARALLEL_ELEMENTS = 1 << 24


# --------------------------------------------------------------------------------------------
# validation helpers: each reads one option of a group and raises naming it
# --------------------------------------------------------------------------------------------
def _real(group, name, low=0.0, high=math.inf, *, high_open=False):
    value = group[name]
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    in_range = low <= value < high if high_open else low <= value <= high
    if not (math.isfinite(value) and in_range):
        if math.isinf(high):
            allowed = f">= {low}"
        else:
            allowed = f"in [{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")
    return value


def _optional_positive(group, name):
    """``None`` (the feature is off) or a finite number > 0."""
    if group[name] is None:
        return None
    value = _real(group, name)
    if value == 0:
        raise ValueError(f"{name} must be > 0 (or None to turn it off), got 0.0")
    return value


def _gradient_row(group):
    """The hyper values every kernel reads first: grad_scale, clip_value, l1, maximize.

    grad_scale is 1 here; a step with ``clip_norm`` overwrites it with the clipping factor.
    """
    clip_value = _optional_positive(group, "clip_value")
    _optional_positive(group, "max_norm")
    return (
        1.0,
        math.inf if clip_value is None else clip_value,
        _real(group, "l1"),
        _flag(group, "maximize"),
    )


def _flag(group, name):
    value = group[name]
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return float(value)


def _betas(group, name="betas"):
    value = group[name]
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (beta1, beta2), got {value!r}")
    pair = {f"{name}[0]": value[0], f"{name}[1]": value[1]}
    return tuple(_real(pair, key, 0.0, 1.0, high_open=True) for key in pair)


_numba_thread_count = None  # Numba's C getter, once its threads are up


def _thread_count():
    """``numba.get_num_threads()`` in 0.15 us instead of 0.66: once Numba's threads are up, its
    C getter is called directly (the public function takes two locks first)."""
    global _numba_thread_count
    if _numba_thread_count is not None:
        return _numba_thread_count()
    count = numba.get_num_threads()  # starts the threads
    getter = getattr(numba_parallel, "_get_num_threads", None)  # absent in another Numba
    if getter is not None and getter() == count:
        _numba_thread_count = getter
    return count


def _median(values):
    """``statistics.median`` of a short non-empty list, without its type checks (5x faster)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _group_key(group):
    """What identifies a group's options for the hyper table cache: the group and its version
    for a :class:`ParamGroup`; for a plain dict put in ``param_groups`` by hand, its values
    (the same "params" list compares equal by identity, without touching its arrays)."""
    if type(group) is ParamGroup:
        return group, group.version
    return tuple(group.values())


class ParamGroup(dict):
    """One parameter group: a dict (``param_groups[i]``, as in torch) that counts its changes.

    Every way of changing the dict adds 1 to ``version``, so that :meth:`Optimizer.step` can see
    that no option changed by comparing numbers instead of every option's value. Comparing
    values cost 0.6 us per step with hot caches and 15 to 20 us when a forward and backward
    pass had evicted the interpreter's data between steps (SGD and Adam, 1e3 to 1e5 elements,
    float32). A change inside a value (a list of betas modified in place) is not a change of
    the dict: assign a new value instead.
    """

    __slots__ = ("version",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.version = 0

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self.version += 1

    def __delitem__(self, key):
        super().__delitem__(key)
        self.version += 1

    def __ior__(self, other):
        self.update(other)
        return self

    def update(self, *args, **kwargs):
        super().update(*args, **kwargs)
        self.version += 1

    def setdefault(self, key, default=None):
        self.version += 1
        return super().setdefault(key, default)

    def pop(self, key, *default):
        self.version += 1
        return super().pop(key, *default)

    def popitem(self):
        self.version += 1
        return super().popitem()

    def clear(self):
        super().clear()
        self.version += 1

    def __reduce__(self):
        return (type(self), (dict(self),))


class _Dispatch:
    """Chooses the serial or the parallel kernel of one bucket from its own recent step times.

    A parallel step is fast while Numba's worker threads are awake (the previous parallel call
    was less than a few ms ago) and can stall for a scheduler tick (about 4 ms) when they have
    gone to sleep; whether they sleep depends on what the program does between steps, which no
    fixed size threshold can know. So the bucket times its own steps, in runs of consecutive
    steps on one kernel: a trial run of ``TRIAL`` steps on one kernel, then ``interval`` steps
    on the faster of the two (by the medians of their latest runs), then a trial of the other.
    The interval doubles, from ``MIN_INTERVAL`` up to ``MAX_INTERVAL``, each time a trial
    confirms the choice, and starts again from ``MIN_INTERVAL`` when the choice changes. The
    first step of every run is not timed (it pays for the switch: compilation on first use, the
    threads' wake-up), and a long run ends early, with a trial of the other kernel, once its
    median exceeds the other kernel's. Results do not depend on the choice: both kernels give
    bitwise identical updates.
    """

    TRIAL = 3
    MIN_INTERVAL = 8
    MAX_INTERVAL = 1024
    WINDOW = 5

    def __init__(self):
        self.times = {True: [], False: []}
        self.interval = self.MIN_INTERVAL
        self._start(parallel=True, length=self.TRIAL, trial=True)

    def _start(self, parallel, length, trial):
        self.parallel, self.length, self.trial, self.taken = parallel, length, trial, 0
        self.times[parallel] = []

    def record(self, seconds):
        """Account for one step on the kernel ``self.parallel`` chose, lasting ``seconds``."""
        here, there = self.times[self.parallel], self.times[not self.parallel]
        if self.taken:
            here.append(seconds)
            del here[: -self.WINDOW]
        self.taken += 1
        if self.taken >= self.length:
            self._next_run()
        elif (
            not self.trial and len(here) >= self.TRIAL and there and _median(here) > _median(there)
        ):
            self._start(not self.parallel, self.TRIAL, trial=True)

    def _next_run(self):
        here, there = self.times[self.parallel], self.times[not self.parallel]
        if not (self.trial and here and there):
            self._start(not self.parallel, self.TRIAL, trial=True)
        elif _median(here) <= _median(there):
            self.interval = self.MIN_INTERVAL
            self._start(self.parallel, self.interval, trial=False)
        else:
            self._start(not self.parallel, self.interval, trial=False)
            self.interval = min(2 * self.interval, self.MAX_INTERVAL)


def chunk_count(size, chunk_elements, multiple):
    """Number of equal chunks of at most ``chunk_elements`` for ``size`` elements: one, or a
    multiple of ``multiple`` (0 for 0). Plain arithmetic, also compiled by Numba for the
    STREAM kernels of :mod:`optbench.bandwidth`."""
    count = -(-size // chunk_elements)
    if count > 1:
        count = -(-count // multiple) * multiple
    return count


def chunk_bounds(size):
    """``(start, stop)`` of the work chunks of an array of ``size`` elements (CHUNK_ELEMENTS)."""
    count = chunk_count(size, CHUNK_ELEMENTS, CHUNK_MULTIPLE)
    bounds = [size * k // max(count, 1) for k in range(count + 1)]
    return list(itertools.pairwise(bounds))


class _Bucket:
    """All parameters of one dtype: their addresses, state table, step counts and work chunks."""

    def __init__(self, optimizer, indices):
        params = [optimizer._params[i] for i in indices]
        self.indices = indices
        self.dtype = params[0].dtype
        sizes = np.array([p.size for p in params], np.int64)
        self.offsets = np.concatenate(([0], np.cumsum(sizes)))
        self.size = int(self.offsets[-1])
        self.state = np.zeros((len(optimizer._state_names), self.size), self.dtype)
        self.steps = np.zeros(len(params), np.int64)
        self.param_addresses = np.array([p.ctypes.data for p in params], np.intp)
        self.grad_addresses = np.zeros(len(params), np.intp)
        self.grads = None
        rows = []
        for local, (index, size) in enumerate(zip(indices, sizes, strict=True)):
            group = optimizer._group_of[index]
            for start, stop in chunk_bounds(int(size)):
                rows.append((local, start, stop, self.offsets[local] + start, group))
        self.work = np.array(rows, np.int64).reshape(-1, 5)
        self.sum_of_squares = np.zeros(len(self.work))
        self.nonfinite = np.zeros(len(self.work), np.bool_)
        self.matrix_shapes = np.array(
            [p.shape if p.ndim == 2 else (0, 0) for p in params], np.int64
        )
        self.radii = np.zeros(len(params))
        self.dispatch = _Dispatch()

    def columns(self, local):
        return slice(int(self.offsets[local]), int(self.offsets[local + 1]))

    def take_grads(self, grads):
        """Point the kernel at this step's gradients (addresses are reused for the same arrays)."""
        mine = [grads[i] for i in self.indices]
        if self.grads is None or not all(map(operator.is_, mine, self.grads)):
            self.grad_addresses[:] = [g.ctypes.data for g in mine]
            self.grads = mine


class Optimizer:
    """Base class: parameter groups, validation, fused dispatch and state round trip.

    Subclasses set ``_state_names`` (rows of the state table, named as in torch), ``_kernels``
    (the serial and parallel kernel) and implement ``_hyper_row(group)``, which validates a
    group's options and returns them in the kernel's order, and ``_state_in_use(group)``.

    Keyword options of every optimizer: ``clip_value``, ``l1``, ``max_norm`` (per group),
    ``clip_norm``, ``nonfinite`` (see the README), ``flush_denormals`` and ``dispatch`` (the
    properties below; neither is saved by :meth:`state_dict`, like ``clip_norm``).
    """

    _state_names: tuple[str, ...] = ()
    _state_initial_values = MappingProxyType({})
    _kernels: tuple = ()

    def __init__(
        self,
        params,
        defaults,
        *,
        clip_value=None,
        l1=0.0,
        max_norm=None,
        clip_norm=None,
        nonfinite="propagate",
        flush_denormals=False,
        dispatch="auto",
    ):
        self._cached_options = self._cached_hyper = self._previous_grads = None
        self._max_norm_in_use = False
        self.defaults = {**defaults, "clip_value": clip_value, "l1": l1, "max_norm": max_norm}
        self.clip_norm = _optional_positive({"clip_norm": clip_norm}, "clip_norm")
        if nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
        self.nonfinite = nonfinite
        self.flush_denormals = flush_denormals
        self.dispatch = dispatch
        self.skipped_steps = 0
        self.param_groups = [
            self._new_group(group, i) for i, group in enumerate(self._split_groups(params))
        ]
        self._params = tuple(p for group in self.param_groups for p in group["params"])
        self._group_of = [i for i, group in enumerate(self.param_groups) for _ in group["params"]]
        _check_params(self._params)
        self._hyper_table()
        by_dtype = {}
        for index, param in enumerate(self._params):
            by_dtype.setdefault(param.dtype, []).append(index)
        self._buckets = [_Bucket(self, indices) for indices in by_dtype.values()]
        self._reset_state()

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            options = ", ".join(f"{k}={v!r}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} arrays, {options}")
        return "\n".join([*lines, ")"])

    @property
    def flush_denormals(self):
        """Treat subnormal numbers as zero, in and out, during every step (default False).

        A moment that decays into the subnormal range (below 1.2e-38 in float32, 2.2e-308 in
        float64; e.g. the second moment of a weight whose gradient stays zero) makes every
        operation on it slower on x86 CPUs (1.5x to 40x, by CPU and dtype; see
        ``optbench.kernels._fpenv``). With True the kernels set the FTZ and DAZ
        bits of MXCSR on each thread that runs a part of the step, Numba's worker threads
        included, and restore them after it: subnormal inputs are read as zero and subnormal
        results written as zero, which removes the slowdown. Off by default because it changes
        results: values that would be subnormal become zero. Needs an x86-64 CPU.
        """
        return self._flush_denormals

    @flush_denormals.setter
    def flush_denormals(self, value):
        value = _flag({"flush_denormals": value}, "flush_denormals")
        if value and not FLUSH_SUPPORTED:
            raise ValueError("flush_denormals=True needs an x86-64 CPU (it sets MXCSR)")
        self._flush_denormals = bool(value)

    @property
    def dispatch(self):
        """Kernel choice per dtype: ``"auto"`` (default), ``"serial"`` or ``"parallel"``.

        ``"auto"`` steps fewer than ``PARALLEL_MIN_ELEMENTS`` elements serially, at least
        ``ALWAYS_PARALLEL_ELEMENTS`` on Numba's threads, and sizes in between on whichever
        kernel its own recent steps ran faster (see ``_Dispatch``). With one Numba thread every
        step is serial. The choice never changes results.
        """
        return self._dispatch

    @dispatch.setter
    def dispatch(self, value):
        if value not in DISPATCH_MODES:
            raise ValueError(f"dispatch must be one of {DISPATCH_MODES}, got {value!r}")
        self._dispatch = value

    # ---------------------------------------------------------------- construction
    @staticmethod
    def _split_groups(params):
        if isinstance(params, np.ndarray | dict):
            raise TypeError(
                "params must be a list of arrays or of parameter-group dicts, "
                f"got a single {type(params).__name__}"
            )
        try:
            params = list(params)
        except TypeError:
            raise TypeError(
                f"params must be a list of arrays or of parameter-group dicts, "
                f"got {type(params).__name__}"
            ) from None
        if not params:
            raise ValueError("params is empty: the optimizer needs at least one array")
        if all(isinstance(p, dict) for p in params):
            return params
        if any(isinstance(p, dict) for p in params):
            raise TypeError("params mixes arrays and parameter-group dicts")
        return [{"params": params}]

    def _new_group(self, group, index):
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(
                f"param_groups[{index}] has unknown options {sorted(unknown)}; "
                f"{type(self).__name__} takes {sorted(self.defaults)}"
            )
        if "params" not in group:
            raise ValueError(f"param_groups[{index}] has no 'params' entry")
        arrays = group["params"]
        arrays = [arrays] if isinstance(arrays, np.ndarray) else list(arrays)
        if not arrays:
            raise ValueError(f"param_groups[{index}]['params'] is empty")
        return ParamGroup({**self.defaults, **group, "params": arrays})

    # ---------------------------------------------------------------- subclass hooks
    def _hyper_row(self, group):
        raise NotImplementedError

    def _state_in_use(self, group):
        return self._state_names

    def _prepare_step(self, hyper):
        """Fill hyper values that change every step; called once the step is certain to run."""

    def _group_step(self, group_index):
        """Steps taken so far by the arrays of group ``group_index`` (they step together)."""
        index = self._group_of.index(group_index)
        for bucket in self._buckets:
            if index in bucket.indices:
                return int(bucket.steps[bucket.indices.index(index)])
        raise AssertionError("every parameter is in a bucket")

    # ---------------------------------------------------------------- hot path
    def _hyper_table(self, groups=None):
        """Validate every group's options; return them as the kernels' float64 table.

        The table of the optimizer's own groups is cached while their options stay the same: a
        :class:`ParamGroup` counts its changes; a plain dict put in ``param_groups`` by hand is
        compared by value. Either way an in-place change of ``param_groups`` is seen.
        """
        own = groups is None
        groups = self.param_groups if own else groups
        flush = float(self.flush_denormals)
        if own:
            options = (flush, *map(_group_key, groups))
            try:
                if options == self._cached_options:
                    return self._cached_hyper
            except (TypeError, ValueError):
                pass  # an option was set to something without a plain == (an array, say)
        rows = []
        for i, group in enumerate(groups):
            try:
                rows.append((*_gradient_row(group), flush, *self._hyper_row(group)))
            except (TypeError, ValueError) as error:
                if len(groups) == 1:
                    raise
                raise type(error)(f"param_groups[{i}]: {error}") from None
        table = np.array(rows, np.float64)
        if own:
            self._cached_options, self._cached_hyper = options, table
            self._max_norm_in_use = any(group["max_norm"] is not None for group in groups)
        return table

    def _checked_grads(self, grads):
        """Check ``grads``; return True when they are the previous step's array objects.

        Arrays that are the same objects as in the previous step (a training loop that reuses
        its gradient buffers) were checked then and keep their memory: NumPy refuses to resize
        an array the optimizer holds a reference to, and a new dtype or shape assigned in place
        cannot change its byte size. Only the parameters' writeable flags are checked again.
        The full check costs about 0.3 us per array, the bulk of a step of many small arrays.
        """
        if not isinstance(grads, list | tuple):
            raise TypeError(f"grads must be a list of arrays, got {type(grads).__name__}")
        if len(grads) != len(self._params):
            raise ValueError(
                f"grads has {len(grads)} arrays but the optimizer has {len(self._params)} params"
            )
        previous = self._previous_grads
        if previous is not None and all(map(operator.is_, grads, previous)):
            for i, param in enumerate(self._params):
                if not param.flags.writeable:
                    _raise_for_grad(i, grads[i], param)
            return True
        for i, (grad, param) in enumerate(zip(grads, self._params, strict=True)):
            if not (
                isinstance(grad, np.ndarray)
                and grad.dtype == param.dtype
                and grad.shape == param.shape
                and grad.flags.c_contiguous
                and param.flags.writeable
            ):
                _raise_for_grad(i, grad, param)
        return False

    def step(self, grads):
        """Update every parameter in place from ``grads`` (one array per parameter, same order).

        Raises ``TypeError``/``ValueError`` naming the offending argument, before any array is
        modified, for a wrong number of gradients, a non-array, a dtype or shape that differs
        from the parameter's, a non-C-contiguous gradient, a read-only parameter, or an option
        of ``param_groups`` changed to an invalid value. With ``nonfinite="raise"`` a NaN/Inf
        gradient raises ``FloatingPointError`` naming the array, with ``"skip"`` the step is
        skipped and counted in ``skipped_steps``; either way nothing is modified.
        """
        same_grads = self._checked_grads(grads)
        hyper = self._hyper_table()
        if not same_grads:
            for bucket in self._buckets:
                bucket.take_grads(grads)
            self._previous_grads = tuple(grads)
        if self.clip_norm is not None or self.nonfinite != "propagate":
            squared_norm, first_bad = self._gradient_statistics()
            if first_bad is not None and self.nonfinite == "raise":
                raise FloatingPointError(
                    f"grads[{first_bad}] contains NaN or Inf; params and state are unchanged"
                )
            if first_bad is not None and self.nonfinite == "skip":
                self.skipped_steps += 1
                return
            if self.clip_norm is not None:
                hyper[:, 0] = _clip_factor(self.clip_norm, math.sqrt(squared_norm))
        self._prepare_step(hyper)
        serial, parallel = self._kernels
        for bucket in self._buckets:
            if bucket.work.shape[0] == 0:
                bucket.steps += 1
                continue
            arguments = (
                bucket.work,
                bucket.param_addresses,
                bucket.grad_addresses,
                bucket.state,
                hyper,
                bucket.steps,
            )
            use_parallel = self._use_parallel(bucket)
            if use_parallel is None:
                start = time.perf_counter()
                (parallel if bucket.dispatch.parallel else serial)(*arguments)
                bucket.dispatch.record(time.perf_counter() - start)
            else:
                (parallel if use_parallel else serial)(*arguments)
        if self._max_norm_in_use:  # set with the hyper table above
            self._apply_max_norm()

    def _use_parallel(self, bucket):
        """True or False where the kernel is fixed; None where ``bucket.dispatch`` chooses."""
        dispatch = self._dispatch
        if dispatch == "serial" or (dispatch == "auto" and bucket.size < PARALLEL_MIN_ELEMENTS):
            return False
        if _thread_count() == 1:  # asked only when it matters
            return False
        if dispatch == "parallel" or bucket.size >= ALWAYS_PARALLEL_ELEMENTS:
            return True
        return None

    def _gradient_statistics(self):
        """Squared global L2 norm of the gradients and the first array holding NaN/Inf (or None).

        Partial sums are taken per work chunk and added in chunk order, so the norm is bitwise
        the same whatever the number of threads.
        """
        squared_norm, first_bad = 0.0, None
        for bucket in self._buckets:
            if bucket.work.shape[0] == 0:
                continue
            use_parallel = self._use_parallel(bucket)
            if use_parallel is None:
                use_parallel = bucket.dispatch.parallel
            gradient_statistics = (
                kernels.grad_statistics_parallel if use_parallel else kernels.grad_statistics_serial
            )
            gradient_statistics(
                bucket.work,
                bucket.grad_addresses,
                bucket.state,
                bucket.sum_of_squares,
                bucket.nonfinite,
            )
            squared_norm += float(np.sum(bucket.sum_of_squares))
            if bucket.nonfinite.any():
                local = bucket.work[np.argmax(bucket.nonfinite), 0]
                index = bucket.indices[local]
                first_bad = index if first_bad is None else min(first_bad, index)
        return squared_norm, first_bad

    def _apply_max_norm(self):
        for bucket in self._buckets:
            for local, index in enumerate(bucket.indices):
                radius = self.param_groups[self._group_of[index]]["max_norm"]
                bucket.radii[local] = 0.0 if radius is None else radius
            shapes = bucket.matrix_shapes * (bucket.radii > 0)[:, None]
            if shapes[:, 1].any():
                kernels.max_norm_columns(bucket.param_addresses, shapes, bucket.radii, bucket.state)

    # ---------------------------------------------------------------- state
    def _reset_state(self):
        for bucket in self._buckets:
            bucket.state[:] = 0
            bucket.steps[:] = 0
            for name, option in self._state_initial_values.items():
                row = self._state_names.index(name)
                for local, index in enumerate(bucket.indices):
                    group = self.param_groups[self._group_of[index]]
                    bucket.state[row, bucket.columns(local)] = group[option]

    def _locate(self):
        """Yield (index, param, group, bucket, local position) for every parameter."""
        for bucket in self._buckets:
            for local, index in enumerate(bucket.indices):
                yield index, self._params[index], self._group_of[index], bucket, local

    def state_dict(self):
        """A plain dict: ``{"state": {i: {"step": int, name: array}}, "param_groups": [...]}``.

        Parameters are numbered in the order of ``param_groups``; arrays are copies shaped like
        their parameter; only the buffers the options use are listed (as in torch).
        """
        state = {}
        for index, param, group, bucket, local in self._locate():
            entry = {"step": int(bucket.steps[local])}
            for name in self._state_in_use(self.param_groups[group]):
                row = self._state_names.index(name)
                entry[name] = bucket.state[row, bucket.columns(local)].reshape(param.shape).copy()
            state[index] = entry
        groups, first = [], 0
        for group in self.param_groups:
            options = {k: v for k, v in group.items() if k != "params"}
            count = len(group["params"])
            groups.append({**options, "params": list(range(first, first + count))})
            first += count
        return {"state": state, "param_groups": groups, "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state_dict):
        """Restore options and state saved by :meth:`state_dict`; later steps are bit-identical.

        The saved groups must hold as many arrays as this optimizer's, with the same shapes.
        Everything is validated before anything changes. Buffers absent from the saved state
        start from their initial value.
        """
        saved_groups, saved_state = _unpack_state_dict(state_dict, self.param_groups)
        new_groups = [
            self._new_group({**saved, "params": mine["params"]}, i)
            for i, (saved, mine) in enumerate(zip(saved_groups, self.param_groups, strict=True))
        ]
        self._hyper_table(new_groups)
        restored = []
        for index, param, _group, bucket, local in self._locate():
            entry = saved_state.get(index, {})
            step = entry.get("step", 0)
            if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
                raise ValueError(f"state[{index}]['step'] must be an integer >= 0, got {step!r}")
            for name, value in entry.items():
                if name == "step":
                    continue
                if name not in self._state_names:
                    raise ValueError(
                        f"state[{index}] has unknown buffer {name!r}; "
                        f"{type(self).__name__} keeps {list(self._state_names)}"
                    )
                value = np.asarray(value)
                if value.shape != param.shape:
                    raise ValueError(
                        f"state[{index}][{name!r}] has shape {value.shape}, "
                        f"params[{index}] has shape {param.shape}"
                    )
            restored.append((entry, int(step), bucket, local))
        self.param_groups = new_groups
        self.skipped_steps = int(state_dict.get("skipped_steps", 0))
        self._reset_state()
        for entry, step, bucket, local in restored:
            bucket.steps[local] = step
            for name, value in entry.items():
                if name != "step":
                    row = self._state_names.index(name)
                    bucket.state[row, bucket.columns(local)] = np.asarray(value).reshape(-1)


def _clip_factor(clip_norm, norm):
    """``min(1, clip_norm / (norm + 1e-6))``, NaN for a NaN norm (as torch's clip_grad_norm_)."""
    factor = clip_norm / (norm + CLIP_NORM_EPS)
    return factor if factor < 1.0 or math.isnan(factor) else 1.0


def _unpack_state_dict(state_dict, param_groups):
    if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
        raise ValueError("state_dict must be a dict with keys 'state' and 'param_groups'")
    saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
    if len(saved_groups) != len(param_groups):
        raise ValueError(
            f"state_dict has {len(saved_groups)} param groups, the optimizer has "
            f"{len(param_groups)}"
        )
    for i, (saved, mine) in enumerate(zip(saved_groups, param_groups, strict=True)):
        if len(saved.get("params", ())) != len(mine["params"]):
            raise ValueError(
                f"state_dict param_groups[{i}] has {len(saved.get('params', ()))} arrays, "
                f"the optimizer's has {len(mine['params'])}"
            )
    return saved_groups, saved_state


def _raise_for_grad(i, grad, param):
    if not isinstance(grad, np.ndarray):
        raise TypeError(f"grads[{i}] must be a numpy.ndarray, got {type(grad).__name__}")
    if grad.dtype != param.dtype:
        raise TypeError(f"grads[{i}] has dtype {grad.dtype}, params[{i}] has {param.dtype}")
    if grad.shape != param.shape:
        raise ValueError(f"grads[{i}] has shape {grad.shape}, params[{i}] has {param.shape}")
    if not grad.flags.c_contiguous:
        raise ValueError(f"grads[{i}] is not C-contiguous (use numpy.ascontiguousarray)")
    raise ValueError(f"params[{i}] is read-only")


def _check_params(params):
    """Every parameter: a writeable C-contiguous float32/float64 array, none sharing memory."""
    for i, param in enumerate(params):
        if not isinstance(param, np.ndarray):
            raise TypeError(f"params[{i}] must be a numpy.ndarray, got {type(param).__name__}")
        if param.dtype not in FLOAT_DTYPES:
            raise TypeError(f"params[{i}] has dtype {param.dtype}; use float32 or float64")
        if not param.flags.c_contiguous:
            raise ValueError(f"params[{i}] is not C-contiguous")
        if not param.flags.writeable:
            raise ValueError(f"params[{i}] is read-only")
    spans = sorted(
        (p.ctypes.data, p.ctypes.data + p.nbytes, i) for i, p in enumerate(params) if p.size
    )
    for (_, end, first), (start, _, second) in itertools.pairwise(spans):
        if start < end:
            raise ValueError(
                f"params[{max(first, second)}] shares memory with params[{min(first, second)}]: "
                "each array may be optimized once"
            )


class SGD(Optimizer):
    r"""Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    .. math::
        g_t &= \pm\nabla_t + \lambda p_{t-1} \\
        b_t &= \mu b_{t-1} + (1 - \tau) g_t \quad (b_1 = g_1) \\
        p_t &= p_{t-1} - \gamma\,(g_t + \mu b_t \text{ if nesterov else } b_t)

    Without momentum (``mu = 0``) the step is ``p -= lr * g``. ``dampening = momentum`` gives
    the exponential moving average ``b = rho b + (1 - rho) g`` of the lecture notes (from step 2;
    torch starts the buffer at ``b_1 = g_1``).

    Parameters
    ----------
    lr : float, >= 0 (default 1e-3)
    momentum : float, >= 0 (default 0)
    dampening : float in [0, 1] (default 0)
    weight_decay : float, >= 0 (default 0): L2 penalty added to the gradient
    nesterov : bool (default False): needs momentum > 0 and dampening = 0
    maximize : bool (default False): ascend instead of descend
    """

    _state_names = ("momentum_buffer",)
    _kernels = (kernels.sgd_serial, kernels.sgd_parallel)

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        *,
        maximize=False,
        **extras,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "momentum": momentum,
                "dampening": dampening,
                "weight_decay": weight_decay,
                "nesterov": nesterov,
                "maximize": maximize,
            },
            **extras,
        )

    def _hyper_row(self, group):
        row = (
            _real(group, "lr"),
            _real(group, "momentum"),
            _real(group, "dampening", 0.0, 1.0),
            _real(group, "weight_decay"),
            _flag(group, "nesterov"),
        )
        if row[4] and (row[1] <= 0 or row[2] != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening = 0")
        return row

    def _state_in_use(self, group):
        return ("momentum_buffer",) if group["momentum"] != 0 else ()


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al. 2011), as ``torch.optim.Adagrad``.

    .. math::
        \tilde\gamma_t = \gamma / (1 + (t - 1)\eta), \quad
        s_t = s_{t-1} + g_t^2, \quad
        p_t = p_{t-1} - \tilde\gamma_t\, g_t / (\sqrt{s_t} + \epsilon)

    with ``g_t`` the (sign-flipped if ``maximize``) gradient plus ``weight_decay * p``.

    Parameters
    ----------
    lr : float, >= 0 (default 1e-2)
    lr_decay : float, >= 0 (default 0)
    weight_decay : float, >= 0 (default 0)
    initial_accumulator_value : float, >= 0 (default 0): ``s_0``
    eps : float, >= 0 (default 1e-10)
    maximize : bool (default False)
    """

    _state_names = ("sum",)
    _state_initial_values = MappingProxyType({"sum": "initial_accumulator_value"})
    _kernels = (kernels.adagrad_serial, kernels.adagrad_parallel)

    def __init__(
        self,
        params,
        lr=1e-2,
        lr_decay=0.0,
        weight_decay=0.0,
        initial_accumulator_value=0.0,
        eps=1e-10,
        *,
        maximize=False,
        **extras,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "lr_decay": lr_decay,
                "weight_decay": weight_decay,
                "initial_accumulator_value": initial_accumulator_value,
                "eps": eps,
                "maximize": maximize,
            },
            **extras,
        )

    def _hyper_row(self, group):
        _real(group, "initial_accumulator_value")
        return (
            _real(group, "lr"),
            _real(group, "lr_decay"),
            _real(group, "weight_decay"),
            _real(group, "eps"),
        )


class RMSprop(Optimizer):
    r"""RMSprop (Hinton 2012), optionally centered (Graves 2013), as ``torch.optim.RMSprop``.

    .. math::
        v_t &= \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        \bar g_t &= \alpha \bar g_{t-1} + (1 - \alpha) g_t \quad \text{(centered)} \\
        d_t &= \sqrt{v_t - \bar g_t^2} + \epsilon \text{ (centered) or } \sqrt{v_t} + \epsilon \\
        b_t &= \mu b_{t-1} + g_t / d_t, \quad p_t = p_{t-1} - \gamma b_t \quad (\mu > 0) \\
        p_t &= p_{t-1} - \gamma g_t / d_t \quad (\mu = 0)

    Parameters
    ----------
    lr : float, >= 0 (default 1e-2)
    alpha : float in [0, 1] (default 0.99): decay of the squared-gradient average
    eps : float, >= 0 (default 1e-8)
    weight_decay : float, >= 0 (default 0)
    momentum : float, >= 0 (default 0)
    centered : bool (default False)
    maximize : bool (default False)
    """

    _state_names = ("square_avg", "momentum_buffer", "grad_avg")
    _kernels = (kernels.rmsprop_serial, kernels.rmsprop_parallel)

    def __init__(
        self,
        params,
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
        *,
        maximize=False,
        **extras,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "alpha": alpha,
                "eps": eps,
                "weight_decay": weight_decay,
                "momentum": momentum,
                "centered": centered,
                "maximize": maximize,
            },
            **extras,
        )

    def _hyper_row(self, group):
        return (
            _real(group, "lr"),
            _real(group, "alpha", 0.0, 1.0),
            _real(group, "eps"),
            _real(group, "weight_decay"),
            _real(group, "momentum"),
            _flag(group, "centered"),
        )

    def _state_in_use(self, group):
        names = ["square_avg"]
        if group["momentum"] > 0:
            names.append("momentum_buffer")
        if group["centered"]:
            names.append("grad_avg")
        return tuple(names)


class Adam(Optimizer):
    r"""Adam (Kingma & Ba 2015) and AMSGrad (Reddi et al. 2018), as ``torch.optim.Adam``.

    .. math::
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2
            \quad (\text{amsgrad: } v_t \leftarrow \max(v^{\max}_{t-1}, v_t)) \\
        p_t &= p_{t-1} - \frac{\gamma}{1 - \beta_1^t}\,
            \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    ``weight_decay`` adds ``lambda p`` to the gradient, or with ``decoupled_weight_decay``
    multiplies ``p`` by ``1 - gamma lambda`` before the update (AdamW).

    Parameters
    ----------
    lr : float, >= 0 (default 1e-3)
    betas : (float, float), each in [0, 1) (default (0.9, 0.999))
    eps : float, >= 0 (default 1e-8)
    weight_decay : float, >= 0 (default 0)
    amsgrad : bool (default False)
    maximize : bool (default False)
    decoupled_weight_decay : bool (default False)
    """

    _state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _kernels = (kernels.adam_serial, kernels.adam_parallel)

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        *,
        maximize=False,
        decoupled_weight_decay=False,
        **extras,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "betas": betas,
                "eps": eps,
                "weight_decay": weight_decay,
                "amsgrad": amsgrad,
                "maximize": maximize,
                "decoupled_weight_decay": decoupled_weight_decay,
            },
            **extras,
        )

    def _hyper_row(self, group):
        return (
            _real(group, "lr"),
            *_betas(group),
            _real(group, "eps"),
            _real(group, "weight_decay"),
            _flag(group, "amsgrad"),
            _flag(group, "decoupled_weight_decay"),
        )

    def _state_in_use(self, group):
        if group["amsgrad"]:
            return self._state_names
        return ("exp_avg", "exp_avg_sq")


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay, as torch's AdamW.

    Each step first shrinks the parameters, ``p <- p (1 - gamma lambda)``, then applies the
    Adam update without any L2 term in the gradient. Options as :class:`Adam`, with
    ``weight_decay`` defaulting to 1e-2.
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        *,
        maximize=False,
        **extras,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
            **extras,
        )

    def _hyper_row(self, group):
        row = super()._hyper_row(group)
        if not row[-1]:
            raise ValueError("AdamW always decouples weight decay: decoupled_weight_decay=True")
        return row


class Adamax(Optimizer):
    r"""Adamax (Kingma & Ba 2015, section 7.1): Adam with the infinity norm, as torch's Adamax.

    .. math::
        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
        u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \quad
        p_t = p_{t-1} - \frac{\gamma}{1 - \beta_1^t} \frac{m_t}{u_t}

    Parameters
    ----------
    lr : float, >= 0 (default 2e-3)
    betas : (float, float), each in [0, 1) (default (0.9, 0.999))
    eps : float, >= 0 (default 1e-8)
    weight_decay : float, >= 0 (default 0): L2 penalty added to the gradient
    maximize : bool (default False)
    """

    _state_names = ("exp_avg", "exp_inf")
    _kernels = (kernels.adamax_serial, kernels.adamax_parallel)

    def __init__(
        self,
        params,
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        *,
        maximize=False,
        **extras,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "betas": betas,
                "eps": eps,
                "weight_decay": weight_decay,
                "maximize": maximize,
            },
            **extras,
        )

    def _hyper_row(self, group):
        return (
            _real(group, "lr"),
            *_betas(group),
            _real(group, "eps"),
            _real(group, "weight_decay"),
        )


class RAdam(Optimizer):
    r"""Rectified Adam (Liu et al. 2020), as ``torch.optim.RAdam``.

    Adam's moments; with :math:`\rho_\infty = 2/(1-\beta_2) - 1` and
    :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`, the step is
    :math:`\hat m_t \gamma` (SGD with momentum) while :math:`\rho_t \le 5`, and afterwards

    .. math::
        p_t &= p_{t-1} - \hat m_t \gamma \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon} r_t \\
        r_t &= \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}
                          {(\rho_\infty-4)(\rho_\infty-2)\rho_t}}

    With the default betas the switch happens at step 6.

    Parameters
    ----------
    lr : float, >= 0 (default 1e-3)
    betas : (float, float), each in [0, 1) (default (0.9, 0.999))
    eps : float, >= 0 (default 1e-8)
    weight_decay : float, >= 0 (default 0)
    decoupled_weight_decay : bool (default False): AdamW-style decay instead of L2
    maximize : bool (default False)
    """

    _state_names = ("exp_avg", "exp_avg_sq")
    _kernels = (kernels.radam_serial, kernels.radam_parallel)

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        decoupled_weight_decay=False,
        *,
        maximize=False,
        **extras,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "betas": betas,
                "eps": eps,
                "weight_decay": weight_decay,
                "decoupled_weight_decay": decoupled_weight_decay,
                "maximize": maximize,
            },
            **extras,
        )

    def _hyper_row(self, group):
        return (
            _real(group, "lr"),
            *_betas(group),
            _real(group, "eps"),
            _real(group, "weight_decay"),
            _flag(group, "decoupled_weight_decay"),
        )


class Lion(Optimizer):
    r"""Lion (Chen et al. 2023): the sign of an interpolated momentum, with decoupled decay.

    .. math::
        c_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        p_t &= p_{t-1} (1 - \gamma\lambda) - \gamma\,\mathrm{sign}(c_t) \\
        m_t &= \beta_2 m_{t-1} + (1 - \beta_2) g_t

    Every element moves by exactly ``lr`` (plus decay), so ``lr`` is typically 3-10x smaller
    than AdamW's and ``weight_decay`` as much larger.

    Parameters
    ----------
    lr : float, >= 0 (default 1e-4)
    betas : (float, float), each in [0, 1) (default (0.9, 0.99))
    weight_decay : float, >= 0 (default 0)
    maximize : bool (default False)
    """

    _state_names = ("exp_avg",)
    _kernels = (kernels.lion_serial, kernels.lion_parallel)

    def __init__(
        self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *, maximize=False, **extras
    ):
        super().__init__(
            params,
            {"lr": lr, "betas": betas, "weight_decay": weight_decay, "maximize": maximize},
            **extras,
        )

    def _hyper_row(self, group):
        return (
            _real(group, "lr"),
            *_betas(group),
            _real(group, "weight_decay"),
        )


class NAdam(Optimizer):
    r"""NAdam (Dozat 2016): Adam with Nesterov momentum, as ``torch.optim.NAdam``.

    .. math::
        \mu_t &= \beta_1 (1 - \tfrac12 0.96^{t\psi}), \quad P_t = \textstyle\prod_{i \le t} \mu_i \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
        d_t = \sqrt{v_t / (1 - \beta_2^t)} + \epsilon \\
        p_t &= p_{t-1} - \gamma \frac{1 - \mu_t}{1 - P_t} \frac{g_t}{d_t}
              - \gamma \frac{\mu_{t+1}}{1 - P_t \mu_{t+1}} \frac{m_t}{d_t}

    The product :math:`P_t` is kept per group in float64 and listed per array as
    ``mu_product`` in :meth:`state_dict`, as torch does.

    Parameters
    ----------
    lr : float, >= 0 (default 2e-3)
    betas : (float, float), each in [0, 1) (default (0.9, 0.999))
    eps : float, >= 0 (default 1e-8)
    weight_decay : float, >= 0 (default 0)
    momentum_decay : float, >= 0 (default 4e-3): :math:`\psi`
    decoupled_weight_decay : bool (default False): AdamW-style decay (NAdamW)
    maximize : bool (default False)
    """

    _state_names = ("exp_avg", "exp_avg_sq")
    _kernels = (kernels.nadam_serial, kernels.nadam_parallel)

    def __init__(
        self,
        params,
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        momentum_decay=4e-3,
        decoupled_weight_decay=False,
        *,
        maximize=False,
        **extras,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "betas": betas,
                "eps": eps,
                "weight_decay": weight_decay,
                "momentum_decay": momentum_decay,
                "decoupled_weight_decay": decoupled_weight_decay,
                "maximize": maximize,
            },
            **extras,
        )
        self._mu_product = [1.0] * len(self.param_groups)

    def _hyper_row(self, group):
        _real(group, "momentum_decay")
        return (
            _real(group, "lr"),
            *_betas(group),
            _real(group, "eps"),
            _real(group, "weight_decay"),
            _flag(group, "decoupled_weight_decay"),
            math.nan,  # grad_coefficient, set by _prepare_step
            math.nan,  # avg_coefficient, set by _prepare_step
        )

    def _prepare_step(self, hyper):
        for i, group in enumerate(self.param_groups):
            step = self._group_step(i) + 1
            beta1, psi, lr = group["betas"][0], group["momentum_decay"], group["lr"]
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
            self._mu_product[i] *= mu
            hyper[i, kernels.COMMON + 6] = lr * (1.0 - mu) / (1.0 - self._mu_product[i])
            hyper[i, kernels.COMMON + 7] = lr * mu_next / (1.0 - self._mu_product[i] * mu_next)

    def state_dict(self):
        saved = super().state_dict()
        for i, entry in saved["state"].items():
            entry["mu_product"] = self._mu_product[self._group_of[i]]
        return saved

    def load_state_dict(self, state_dict):
        products = []
        for i, group in enumerate(state_dict["param_groups"]):
            values = {
                float(state_dict["state"].get(index, {}).get("mu_product", 1.0))
                for index in group["params"]
            }
            if len(values) != 1:
                raise ValueError(f"param_groups[{i}]: arrays of one group differ in mu_product")
            products.append(values.pop())
        stripped = {
            **state_dict,
            "state": {
                index: {k: v for k, v in entry.items() if k != "mu_product"}
                for index, entry in state_dict["state"].items()
            },
        }
        super().load_state_dict(stripped)
        self._mu_product = products


class AdaBound(Optimizer):
    r"""AdaBound and AMSBound (Luo et al. 2019): Adam with dynamic bounds on the step size.

    .. math::
        \eta_t &= \gamma_{lr} \sqrt{1 - \beta_2^t} / (1 - \beta_1^t), \quad
        f = \text{final\_lr} \cdot \gamma_{lr} / \text{base\_lr} \\
        p_t &= p_{t-1} - \mathrm{clip}\Big(\frac{\eta_t}{\sqrt{v_t} + \epsilon},\,
              f\big(1 - \tfrac{1}{\gamma t + 1}\big),\,
              f\big(1 + \tfrac{1}{\gamma t}\big)\Big)\, m_t

    The bounds converge to ``f``: AdaBound starts like Adam and ends like SGD at rate ``f``.
    ``base_lr`` is the group's ``lr`` at construction (a schedule that lowers ``lr`` lowers the
    final rate with it, as in the paper's code).

    Parameters
    ----------
    lr : float, >= 0 (default 1e-3)
    betas : (float, float), each in [0, 1) (default (0.9, 0.999))
    final_lr : float, >= 0 (default 0.1)
    gamma : float in [0, 1) (default 1e-3): convergence speed of the bounds
    eps : float, >= 0 (default 1e-8)
    weight_decay : float, >= 0 (default 0)
    amsbound : bool (default False)
    maximize : bool (default False)
    """

    _state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _kernels = (kernels.adabound_serial, kernels.adabound_parallel)

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        final_lr=0.1,
        gamma=1e-3,
        eps=1e-8,
        weight_decay=0.0,
        amsbound=False,
        *,
        maximize=False,
        **extras,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "betas": betas,
                "final_lr": final_lr,
                "gamma": gamma,
                "eps": eps,
                "weight_decay": weight_decay,
                "amsbound": amsbound,
                "maximize": maximize,
                "base_lr": None,
            },
            **extras,
        )

    def _new_group(self, group, index):
        group = super()._new_group(group, index)
        if group["base_lr"] is None:
            group["base_lr"] = group["lr"]
        return group

    def _hyper_row(self, group):
        lr = _real(group, "lr")
        base_lr = _real(group, "base_lr")
        if base_lr == 0:
            raise ValueError(
                "base_lr (by default the lr at construction) must be > 0: "
                "AdaBound scales final_lr by lr / base_lr"
            )
        return (
            lr,
            *_betas(group),
            _real(group, "final_lr"),
            _real(group, "gamma", 0.0, 1.0, high_open=True),
            _real(group, "eps"),
            _real(group, "weight_decay"),
            _flag(group, "amsbound"),
            base_lr,
        )

    def _state_in_use(self, group):
        if group["amsbound"]:
            return self._state_names
        return ("exp_avg", "exp_avg_sq")
