"""The optimizer machinery every algorithm shares: groups, validation, the fused step and the
state round trip. An algorithm's class only names its spec (see :mod:`optbench.optim.classes`).

The optimizer keeps the state of all arrays of one dtype side by side in one table (one row per
state buffer, a :class:`Bucket`), and steps all of them with one compiled call: the Python cost
of a step is a handful of checks per array, whatever the arrays' sizes (fewer when ``grads``
holds the same array objects as in the previous step).
"""

import bisect
import contextlib
import itertools
import math
import operator
import time

import numpy as np

from .. import validation
from ..kernels import optimizers as kernels
from ..kernels._fpenv import SUPPORTED as FLUSH_SUPPORTED
from ..kernels.chunks import chunk_bounds
from ..kernels.drivers import COMMON, drivers
from ..reference.optimizers import gradient_with_extras, step_with_extras
from .dispatch import (
    ALWAYS_PARALLEL_ELEMENTS,
    DISPATCH_MODES,
    PARALLEL_MIN_ELEMENTS,
    Dispatch,
    thread_count,
)
from .groups import GroupList, ParamGroup

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
NONFINITE_POLICIES = ("propagate", "raise", "skip")
# Added to the global gradient norm before dividing, as torch.nn.utils.clip_grad_norm_ does.
CLIP_NORM_EPS = 1e-6
# options of every optimizer, per group, with their defaults
EXTRA_OPTIONS = ("clip_value", "l1", "max_norm")
# steps are int64 in the kernels
MAX_STEP = np.iinfo(np.int64).max - 1


class Bucket:
    """All parameters of one dtype: their addresses, state table, step counts and work chunks.

    ``indices`` are the parameters' positions in :attr:`Optimizer.params`; ``group_of`` gives
    each parameter's group.
    """

    def __init__(self, params, indices, group_of, state_rows, reductions=0):
        mine = [params[i] for i in indices]
        self.indices = indices
        self.dtype = mine[0].dtype
        sizes = np.array([p.size for p in mine], np.int64)
        self.offsets = np.concatenate(([0], np.cumsum(sizes)))
        self.size = int(self.offsets[-1])
        self.state = np.zeros((state_rows, self.size), self.dtype)
        self.steps = np.zeros(len(mine), np.int64)
        self.param_addresses = np.array([p.ctypes.data for p in mine], np.intp)
        self.grad_addresses = np.zeros(len(mine), np.intp)
        self.grads = None
        self.work = work_table(mine, [group_of[i] for i in indices])
        self.sum_of_squares = np.zeros(len(self.work))
        self.nonfinite = np.zeros(len(self.work), np.bool_)
        self.matrix_shapes = np.array([p.shape if p.ndim == 2 else (0, 0) for p in mine], np.int64)
        self.radii = np.zeros(len(mine))
        self.dispatch = Dispatch()
        # a spec with a reduce pass: per-chunk partial sums and per-array totals
        self.reductions = None
        if reductions:
            ndims = np.array([p.ndim for p in mine], np.int64)
            partials = np.zeros((len(self.work), reductions))
            self.reductions = (ndims, partials, np.zeros((len(mine), reductions)))

    def columns(self, local):
        return slice(int(self.offsets[local]), int(self.offsets[local + 1]))

    def take_grads(self, grads, addresses):
        """Point the kernel at this step's gradients (addresses are reused for the same arrays)."""
        mine = [grads[i] for i in self.indices]
        if self.grads is None or not all(map(operator.is_, mine, self.grads)):
            self.grad_addresses[:] = [addresses[i] for i in self.indices]
            self.grads = mine


def work_table(arrays, groups=None):
    """The kernels' work table of ``arrays`` laid side by side: one row ``(array, start, stop,
    column, group)`` per chunk (see ``optbench.kernels.optimizers``); ``groups`` gives each
    array's hyperparameter row (0 for all by default)."""
    groups = [0] * len(arrays) if groups is None else groups
    rows, column = [], 0
    for local, (array, group) in enumerate(zip(arrays, groups, strict=True)):
        for start, stop in chunk_bounds(int(array.size)):
            rows.append((local, start, stop, column + start, group))
        column += array.size
    return np.array(rows, np.int64).reshape(-1, 5)


def _group_key(group):
    """What identifies a group's options and arrays for the hyper table cache: the group and
    its version for a :class:`ParamGroup`; for a plain dict put in ``param_groups`` by hand, its
    option values and the identities of its arrays."""
    if type(group) is ParamGroup:
        return group, group.version
    if not isinstance(group, dict):
        return group
    options = tuple(v for k, v in group.items() if k != "params")
    return options, tuple(map(id, group.get("params", ())))


class Optimizer:
    """Base class: parameter groups, validation, fused dispatch and state round trip.

    A subclass sets ``spec`` (an :class:`~optbench.spec.OptimizerSpec`); its constructor
    passes the group defaults of the spec's hyperparameters as ``defaults``.

    Keyword options of every optimizer: ``clip_value``, ``l1``, ``max_norm`` (per group),
    ``clip_norm``, ``nonfinite`` (see the README), ``flush_denormals`` and ``dispatch`` (the
    properties below; none of the last four is saved by :meth:`state_dict`).
    """

    spec = None

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
        if self.spec is None:
            raise TypeError("Optimizer is a base class: use optim.Adam, optim.SGD, ...")
        self._cached_options = self._cached_hyper = self._previous_grads = None
        self._max_norm_in_use = False
        self._kernels = None
        if self.spec.fused:
            self._kernels = drivers(self.spec.chunk, self.spec.reduce, split=self.spec.coupled)
        self.defaults = {**defaults, "clip_value": clip_value, "l1": l1, "max_norm": max_norm}
        self.clip_norm = clip_norm
        self.nonfinite = validation.choice("nonfinite", nonfinite, NONFINITE_POLICIES)
        self.flush_denormals = flush_denormals
        self.dispatch = dispatch
        self.skipped_steps = 0
        self._training = True
        groups = [self._new_group(group, i) for i, group in enumerate(_split_groups(params))]
        self._groups = GroupList()
        self._params, self._buckets, self._scalars, self._laid_out = (), [], [], ()
        self._own_buffers = []
        self._workspace = {}  # the scratch buffers of a spec's update, never saved
        self._rebuild(groups, self._validated_layout(groups))

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            options = ", ".join(f"{k}={v!r}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} arrays, {options}")
        return "\n".join([*lines, ")"])

    # ---------------------------------------------------------------- settings
    @property
    def param_groups(self):
        """The parameter groups, as in torch: options may be changed between steps, groups
        added (:meth:`add_param_group`), removed, reordered, or given new ``params``; the next
        step follows, and each array keeps its state."""
        return self._groups

    @param_groups.setter
    def param_groups(self, groups):
        self._groups = GroupList(groups)
        self._cached_options = None

    @property
    def params(self):
        """Every parameter array, in the order of the groups (as ``grads`` must list them)."""
        return self._params

    @property
    def clip_norm(self):
        """Rescale all gradients together so that their global L2 norm is at most this (None:
        off), as ``torch.nn.utils.clip_grad_norm_``."""
        return self._clip_norm

    @clip_norm.setter
    def clip_norm(self, value):
        self._clip_norm = validation.optional_positive("clip_norm", value)
        self._cached_options = None  # the cached table holds the last clipping factor

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
        value = validation.flag("flush_denormals", value)
        if value and not FLUSH_SUPPORTED:
            raise ValueError("flush_denormals=True needs an x86-64 CPU (it sets MXCSR)")
        self._flush_denormals = value

    @property
    def dispatch(self):
        """Kernel choice per dtype: ``"auto"`` (default), ``"serial"`` or ``"parallel"``.

        ``"auto"`` steps fewer than ``PARALLEL_MIN_ELEMENTS`` elements serially, at least
        ``ALWAYS_PARALLEL_ELEMENTS`` on Numba's threads, and sizes in between on whichever
        kernel its own recent steps ran faster (see ``optim.dispatch``). With one Numba thread
        every step is serial. The choice never changes results.
        """
        return self._dispatch

    @dispatch.setter
    def dispatch(self, value):
        self._dispatch = validation.choice("dispatch", value, DISPATCH_MODES)

    # ---------------------------------------------------------------- modes
    @property
    def training(self):
        """True in train mode (from construction), False after :meth:`eval`."""
        return self._training

    def train(self):
        """Train mode: the parameters hold the point where gradients are taken. An optimizer
        that keeps other weights to evaluate (``spec.to_eval``: Schedule-Free's average x)
        moves every stepped array back from them; any other only records the mode. Returns
        the optimizer."""
        if not self._training:
            self._move(self.spec.to_train)
            self._training = True
        return self

    def eval(self):
        """Eval mode: the parameters hold the weights to evaluate (for Schedule-Free, x
        instead of the training point y); ``step`` then refuses to run until :meth:`train`.
        Arrays not yet stepped are left as they are. Returns the optimizer."""
        if self._training:
            self._move(self.spec.to_eval)
            self._training = False
        return self

    @contextlib.contextmanager
    def evaluating(self):
        """``with optimizer.evaluating():`` eval mode inside the block, the previous mode after
        it (what the runner wraps each evaluation in). Reads only ``training``, ``eval`` and
        ``train``, so wrappers with those share it."""
        was_training = self.training
        self.eval()
        try:
            yield self
        finally:
            if was_training:
                self.train()

    def _move(self, move):
        """Apply ``spec.to_eval`` or ``spec.to_train`` to every array stepped at least once,
        after checking the groups and that every parameter can still be written."""
        if move is None:
            return
        self._hyper_table()
        _check_params(self._params)
        for index, param, group_index, bucket, local in self._locate():
            if bucket.steps[local] == 0:
                continue
            group = self._groups[group_index]
            state = self._buffers(index, group, bucket, local)
            move(param, state, {k: v for k, v in group.items() if k != "params"})

    def _buffers(self, index, group, bucket, local):
        """Views of the buffers array ``index`` keeps under ``group``'s options, by name: its
        columns of the bucket's table shaped like the array, and its own buffers (those of a
        ``State`` with a ``shape``)."""
        rows = self.spec.table_names
        param = self._params[index]
        views = {}
        for name in self.spec.state_in_use(group, param.shape):
            if name in rows:
                views[name] = bucket.state[rows.index(name), bucket.columns(local)]
                views[name] = views[name].reshape(param.shape)
            else:
                views[name] = self._own_buffers[index][name]
        return views

    # ---------------------------------------------------------------- groups
    def add_param_group(self, param_group):
        """Add a group (a dict with ``"params"`` and any options; the others take the
        constructor's defaults), as torch's ``add_param_group``; its arrays start afresh."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        groups = [*self._groups, self._new_group(param_group, len(self._groups))]
        layout = self._validated_layout(groups)
        self._groups.append(groups[-1])
        self._rebuild(list(self._groups), layout)

    def _new_group(self, group, index):
        """A :class:`ParamGroup`: ``group``'s options over the defaults, ``params`` a tuple."""
        if not isinstance(group, dict):
            raise TypeError(f"param_groups[{index}] must be a dict, got {type(group).__name__}")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(
                f"param_groups[{index}] has unknown options {sorted(unknown)}; "
                f"{type(self).__name__} takes {sorted(self.defaults)}"
            )
        if "params" not in group:
            raise ValueError(f"param_groups[{index}] has no 'params' entry")
        arrays = group["params"]
        arrays = (arrays,) if isinstance(arrays, np.ndarray) else tuple(arrays)
        if not arrays:
            raise ValueError(f"param_groups[{index}]['params'] is empty")
        options = {**self.defaults, **group, "params": arrays}
        for h in self.spec.hyperparameters:
            if h.default_from is not None and options[h.name] is None:
                options[h.name] = options[h.default_from]
        return ParamGroup(options)

    def _validated_layout(self, groups):
        """Check ``groups`` (every option, every array); return their arrays and group indices.

        Raises naming the group, the option or the array; nothing is changed.
        """
        for i, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise ValueError(f"param_groups[{i}] must be a dict with a 'params' entry")
            missing = set(self.defaults) - set(group)
            if missing:
                raise ValueError(
                    f"param_groups[{i}] lacks options {sorted(missing)}; add groups with "
                    "add_param_group, which fills in the defaults"
                )
            arrays = group["params"]
            if isinstance(arrays, np.ndarray) or not isinstance(arrays, list | tuple) or not arrays:
                raise ValueError(f"param_groups[{i}]['params'] must be a non-empty list of arrays")
        self._hyper_rows(groups)
        params = tuple(p for group in groups for p in group["params"])
        _check_params(params)
        for i, param in enumerate(params):
            if not self.spec.takes(param.shape):
                dims = " or ".join(f"{n}-D" for n in self.spec.ndims)
                raise ValueError(
                    f"params[{i}] has shape {param.shape}: {type(self).__name__} takes {dims} "
                    "arrays only"
                )
        group_of = [i for i, group in enumerate(groups) for _ in group["params"]]
        return params, group_of

    def _rebuild(self, groups, layout):
        """Lay out buckets for ``groups``; every array that was already here keeps its state
        and step count, every group its scalars."""
        saved = {id(p): s for p, s in zip(self._params, self._array_states(), strict=True)}
        own = {id(p): b for p, b in zip(self._params, self._own_buffers, strict=True)}
        scalars = {id(g): s for g, s in zip(self._laid_out, self._scalars, strict=True)}
        params, group_of = layout
        by_dtype = {}
        for index, param in enumerate(params):
            by_dtype.setdefault(param.dtype, []).append(index)
        rows = len(self.spec.table_names)
        self._params, self._group_of = params, group_of
        sums = len(self.spec.reductions)
        self._buckets = [Bucket(params, idx, group_of, rows, sums) for idx in by_dtype.values()]
        self._scalars = [scalars.get(id(g)) or self._initial_scalars(g) for g in groups]
        if len(self._groups) != len(groups) or any(map(operator.is_not, self._groups, groups)):
            self._groups = GroupList(groups)
        self._laid_out = tuple(groups)
        self._structure = _structure(self._groups)
        self._spans = _spans(params)
        self._cached_options = self._previous_grads = None
        self._reset_state()
        for index, param, _group, bucket, local in self._locate():
            if id(param) in saved:
                step, buffers = saved[id(param)]
                bucket.steps[local] = step
                bucket.state[:, bucket.columns(local)] = buffers
                for name, buffer in own[id(param)].items():
                    fresh = self._own_buffers[index].get(name)
                    if fresh is not None and fresh.shape == buffer.shape:
                        self._own_buffers[index][name] = buffer

    def _array_states(self):
        """(step, state columns) of every parameter, in order."""
        states = [None] * len(self._params)
        for index, _param, _group, bucket, local in self._locate():
            states[index] = (
                int(bucket.steps[local]),
                bucket.state[:, bucket.columns(local)].copy(),
            )
        return states

    def _initial_scalars(self, group):
        return {s.name: _initial(s, group) for s in self.spec.group_scalars}

    # ---------------------------------------------------------------- hot path
    def _hyper_rows(self, groups):
        """Validate every group's options; return the kernels' float64 table, a row a group."""
        flush = float(self.flush_denormals)
        rows = []
        for i, group in enumerate(groups):
            try:
                rows.append((*_gradient_row(group), flush, *self.spec.kernel_row(group)))
            except (TypeError, ValueError) as error:
                if len(groups) == 1:
                    raise
                raise type(error)(f"param_groups[{i}]: {error}") from None
        return np.array(rows, np.float64)

    def _hyper_table(self):
        """The kernels' table of the current groups, re-read when anything changed.

        A :class:`ParamGroup` and the group list count their changes; a plain dict put in
        ``param_groups`` by hand is compared by value. A change of the groups' arrays (a group
        added, removed, reordered or given new ``params``) lays the buckets out anew first.
        """
        groups = self._groups
        options = (self.flush_denormals, groups.version, *map(_group_key, groups))
        try:
            if options == self._cached_options:
                return self._cached_hyper
        except (TypeError, ValueError):
            pass  # an option was set to something without a plain == (an array, say)
        self._follow_structure()
        table = self._hyper_rows(groups)
        self._cached_options, self._cached_hyper = options, table
        self._max_norm_in_use = any(group["max_norm"] is not None for group in groups)
        return table

    def _follow_structure(self):
        """Lay the buckets out anew if the groups' arrays changed since the last layout."""
        groups = list(self._groups)
        if _structure(groups) != self._structure:
            self._rebuild(groups, self._validated_layout(groups))

    def _checked_grads(self, grads):
        """Check ``grads``; return their data addresses, or None when they are the previous
        step's array objects.

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
            return None
        for i, (grad, param) in enumerate(zip(grads, self._params, strict=True)):
            if not (
                isinstance(grad, np.ndarray)
                and grad.dtype == param.dtype
                and grad.shape == param.shape
                and grad.flags.c_contiguous
                and param.flags.writeable
            ):
                _raise_for_grad(i, grad, param)
        addresses = [g.ctypes.data for g in grads]
        self._refuse_aliasing(grads, addresses)
        return addresses

    def _refuse_aliasing(self, grads, addresses):
        """A gradient sharing memory with a parameter would be read after that parameter was
        updated in the same step: refuse it."""
        starts, ends, owners = self._spans
        for i, (grad, start) in enumerate(zip(grads, addresses, strict=True)):
            if grad.size == 0:
                continue
            k = bisect.bisect_right(ends, start)
            if k < len(starts) and starts[k] < start + grad.nbytes:
                raise ValueError(
                    f"grads[{i}] shares memory with params[{owners[k]}]: a step reads every "
                    "gradient while it writes the parameters; pass a copy"
                )

    def step(self, grads):
        """Update every parameter in place from ``grads`` (one array per parameter, same order).

        Raises ``TypeError``/``ValueError`` naming the offending argument, before any array is
        modified, for a wrong number of gradients, a non-array, a dtype or shape that differs
        from the parameter's, a non-C-contiguous gradient, a gradient sharing memory with a
        parameter, a read-only parameter, or an option or group of ``param_groups`` changed to
        an invalid value. With ``nonfinite="raise"`` a NaN/Inf gradient raises
        ``FloatingPointError`` naming the array, with ``"skip"`` the step is skipped and counted
        in ``skipped_steps``; either way nothing is modified.
        """
        if not self._training and self.spec.switches_weights:
            raise RuntimeError(
                f"{type(self).__name__}.step() in eval mode: the parameters hold the weights "
                "to evaluate, not the training point; call optimizer.train() first"
            )
        hyper = self._hyper_table()
        addresses = self._checked_grads(grads)
        if addresses is not None:
            for bucket in self._buckets:
                bucket.take_grads(grads, addresses)
            self._previous_grads = tuple(grads)
        if self._clip_norm is not None or self.nonfinite != "propagate":
            squared_norm, first_bad = self._gradient_statistics()
            if first_bad is not None and self.nonfinite == "raise":
                raise FloatingPointError(
                    f"grads[{first_bad}] contains NaN or Inf; params and state are unchanged"
                )
            if first_bad is not None and self.nonfinite == "skip":
                self.skipped_steps += 1
                return
            if self._clip_norm is not None:
                hyper[:, 0] = _clip_factor(self._clip_norm, math.sqrt(squared_norm))
        if self._kernels is None:
            self._unfused_step(grads, hyper)
            if self._max_norm_in_use:
                self._apply_max_norm()
            return
        if self.spec.prepare_step is not None:
            self._prepare_step(hyper)
        if self.spec.coupled:
            self._coupled_step(hyper)
        else:
            for bucket in self._buckets:
                seconds = self._run(self._kernels, bucket, hyper)
                if seconds is not None:
                    bucket.dispatch.record(seconds)
        if self._max_norm_in_use:  # set with the hyper table above
            self._apply_max_norm()

    def _run(self, kernels, bucket, hyper, count_empty=True):
        """One driver pair (serial, parallel) over ``bucket``, chosen by the dispatch mode;
        returns the seconds it took where the auto dispatch times it (else None), for the
        caller to record. A bucket without work only counts the step."""
        if bucket.work.shape[0] == 0:
            if count_empty:
                bucket.steps += 1
            return None
        serial, parallel = kernels[:2]
        arguments = (
            bucket.work,
            bucket.param_addresses,
            bucket.grad_addresses,
            bucket.state,
            hyper,
            bucket.steps,
        )
        if bucket.reductions is not None:
            arguments += bucket.reductions
        use_parallel = self._use_parallel(bucket)
        if use_parallel is not None:
            (parallel if use_parallel else serial)(*arguments)
            return None
        start = time.perf_counter()
        (parallel if bucket.dispatch.parallel else serial)(*arguments)
        return time.perf_counter() - start

    def _coupled_step(self, hyper):
        """A coupled spec's step: the reduce pass over every bucket, ``spec.combine`` of the
        groups' sums, then the update pass (see ``OptimizerSpec.combine``)."""
        reduce_kernels, update_kernels = self._kernels[:2], self._kernels[2:]
        times = [self._run(reduce_kernels, bucket, hyper) for bucket in self._buckets]
        sums = np.zeros((len(self._groups), len(self.spec.reductions)))
        for bucket in self._buckets:
            if bucket.work.shape[0]:
                totals = bucket.reductions[2]
                for local, index in enumerate(bucket.indices):
                    sums[self._group_of[index]] += totals[local]
        groups = list(self._groups)
        values = self.spec.combine(sums, groups, self._scalars)
        if values is not None:
            first = COMMON + len(self.spec.kernel_names) - len(self.spec.combined)
            for i, row in enumerate(values):
                hyper[i, first : first + len(row)] = row
            for bucket, seconds in zip(self._buckets, times, strict=True):
                more = self._run(update_kernels, bucket, hyper, count_empty=False)
                if seconds is not None and more is not None:
                    bucket.dispatch.record(seconds + more)

    def _unfused_step(self, grads, hyper):
        """The step of a spec without a chunk kernel, array by array: its ``update`` on views
        of the state, or its NumPy reference on copies written back (the same state, groups
        and state dict as a fused step)."""
        scalar_names = [s.name for s in self.spec.group_scalars]
        updated = {}
        for index, param, group_index, bucket, local in self._locate():
            group = self._groups[group_index]
            views = self._buffers(index, group, bucket, local)
            step = int(bucket.steps[local]) + 1
            scale = float(hyper[group_index, 0])
            if self.spec.update is not None:
                state = {**views, **self._scalars[group_index]}
                self._update_array(param, grads[index], state, step, scale, group)
            else:
                state = {name: view.copy() for name, view in views.items()}
                state.update(self._scalars[group_index])
                options = {k: v for k, v in group.items() if k not in ("params", "max_norm")}
                step_with_extras(
                    self.spec.reference,
                    param,
                    grads[index],
                    state,
                    step,
                    grad_scale=scale,
                    **options,
                )
                for name, view in views.items():
                    view[...] = np.reshape(state[name], view.shape)
            updated[group_index] = {name: float(state[name]) for name in scalar_names}
            bucket.steps[local] += 1
        for group_index, scalars in updated.items():
            self._scalars[group_index] = scalars

    def _update_array(self, param, grad, state, step, scale, group):
        """``spec.update`` on one array, after the gradient transform of every optimizer."""
        extras = (group["clip_value"], group["l1"], group["maximize"])
        grad = gradient_with_extras(param, grad, scale, *extras)
        options = {k: v for k, v in group.items() if k not in ("params", *EXTRA_OPTIONS)}
        self.spec.update(param, grad, state, step, self._workspace, **options)

    def _prepare_step(self, hyper):
        """The spec's per-step values of every group, written into the hyper table."""
        first = COMMON + len(self.spec.kernel_names) - len(self.spec.derived)
        first -= len(self.spec.combined)
        if self.spec.coupled:  # the groups share their scalars: the first group's
            for i in range(1, len(self._scalars)):
                self._scalars[i] = dict(self._scalars[0])
        for i, group in enumerate(self._groups):
            step = self._group_step(i) + 1
            values = self.spec.prepare_step(group, step, self._scalars[i])
            for column, value in enumerate(values, first):
                hyper[i, column] = value  # a slice assignment from a tuple costs 0.5 us more

    def _group_step(self, group_index):
        """Steps taken so far by the first array of group ``group_index``."""
        index = self._group_of.index(group_index)
        for bucket in self._buckets:
            if index in bucket.indices:
                return int(bucket.steps[bucket.indices.index(index)])
        raise AssertionError("every parameter is in a bucket")

    def _use_parallel(self, bucket):
        """True or False where the kernel is fixed; None where ``bucket.dispatch`` chooses."""
        dispatch = self._dispatch
        if dispatch == "serial" or (dispatch == "auto" and bucket.size < PARALLEL_MIN_ELEMENTS):
            return False
        if thread_count() == 1:  # asked only when it matters
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
                radius = self._groups[self._group_of[index]]["max_norm"]
                bucket.radii[local] = 0.0 if radius is None else radius
            shapes = bucket.matrix_shapes * (bucket.radii > 0)[:, None]
            if shapes[:, 1].any():
                kernels.max_norm_columns(bucket.param_addresses, shapes, bucket.radii, bucket.state)

    # ---------------------------------------------------------------- state
    def _reset_state(self):
        table = [s for s in self.spec.state if s.shape is None]
        for bucket in self._buckets:
            bucket.state[:] = 0
            bucket.steps[:] = 0
            for row, buffer in enumerate(table):
                if buffer.initial == 0.0:
                    continue
                for local, index in enumerate(bucket.indices):
                    group = self._groups[self._group_of[index]]
                    bucket.state[row, bucket.columns(local)] = _initial(buffer, group)
        self._own_buffers = [
            {
                s.name: np.full(s.shape_for(param.shape), _initial(s, group), param.dtype)
                for s in self.spec.state
                if s.shape is not None and s.shape_for(param.shape) is not None
            }
            for param, group in zip(
                self._params, (self._groups[g] for g in self._group_of), strict=True
            )
        ]

    def _locate(self):
        """Yield (index, param, group index, bucket, local position) for every parameter."""
        for bucket in self._buckets:
            for local, index in enumerate(bucket.indices):
                yield index, self._params[index], self._group_of[index], bucket, local

    def state_dict(self):
        """A plain dict: ``{"state": {i: {"step": int, name: array}}, "param_groups": [...],
        "skipped_steps": int, "training": bool}``.

        Parameters are numbered in the order of ``param_groups``; arrays are copies shaped like
        their parameter; only the buffers the options use are listed (as in torch), and the
        spec's group scalars are listed with every array of the group (torch's NAdam lists
        ``mu_product`` so).
        """
        self._follow_structure()
        state = {}
        for index, _param, group, bucket, local in self._locate():
            entry = {"step": int(bucket.steps[local])}
            views = self._buffers(index, self._groups[group], bucket, local)
            entry.update((name, view.copy()) for name, view in views.items())
            entry.update(self._scalars[group])
            state[index] = entry
        groups, first = [], 0
        for group in self._groups:
            options = {k: v for k, v in group.items() if k != "params"}
            count = len(group["params"])
            groups.append({**options, "params": list(range(first, first + count))})
            first += count
        return {
            "state": state,
            "param_groups": groups,
            "skipped_steps": self.skipped_steps,
            "training": self._training,
        }

    def load_state_dict(self, state_dict):
        """Restore options and state saved by :meth:`state_dict`; later steps are bit-identical.

        The saved groups must hold as many arrays as this optimizer's, with the same shapes.
        Everything (keys, types, ranges, counters, shapes) is validated before anything
        changes: a refused state dict leaves the optimizer as it was. Buffers absent from the
        saved state start from their initial value.
        """
        self._follow_structure()
        saved_groups, saved_state, skipped = _unpack_state_dict(state_dict, self._groups)
        training = validation.flag("state_dict['training']", state_dict.get("training", True))
        new_groups = [
            self._new_group({**saved, "params": mine["params"]}, i)
            for i, (saved, mine) in enumerate(zip(saved_groups, self._groups, strict=True))
        ]
        self._hyper_rows(new_groups)
        scalars = self._saved_scalars(saved_state, saved_groups)
        restored = [
            self._saved_entry(index, saved_state.get(index, {}))
            for index in range(len(self._params))
        ]
        self._groups = GroupList(new_groups)
        self._laid_out = tuple(new_groups)
        self._structure = _structure(self._groups)
        self._scalars = scalars
        self._cached_options = None
        self.skipped_steps = skipped
        self._training = training
        self._reset_state()
        rows = self.spec.table_names
        for index, _param, _group, bucket, local in self._locate():
            step, buffers = restored[index]
            bucket.steps[local] = step
            for name, value in buffers.items():
                if name in rows:
                    bucket.state[rows.index(name), bucket.columns(local)] = value.reshape(-1)
                else:
                    self._own_buffers[index][name][...] = value

    def _saved_entry(self, index, entry):
        """(step, {buffer: flat array}) of saved entry ``index``, validated."""
        where = f"state[{index}]"
        if not isinstance(entry, dict):
            raise TypeError(f"{where} must be a dict, got {type(entry).__name__}")
        step = entry.get("step", 0)
        if isinstance(step, bool | np.bool_) or not isinstance(step, int | np.integer):
            raise TypeError(f"{where}['step'] must be an integer, got {step!r}")
        if not 0 <= step <= MAX_STEP:
            raise ValueError(f"{where}['step'] must be an integer in [0, {MAX_STEP}], got {step!r}")
        param = self._params[index]
        scalar_names = {s.name for s in self.spec.group_scalars}
        buffers = {}
        for name, value in entry.items():
            if name == "step" or name in scalar_names:
                continue
            if name not in self.spec.state_names:
                raise ValueError(
                    f"{where} has unknown buffer {name!r}; "
                    f"{type(self).__name__} keeps {list(self.spec.state_names)}"
                )
            value = np.asarray(value)
            if value.dtype.kind not in "fiu":
                raise TypeError(f"{where}[{name!r}] must be real numbers, got dtype {value.dtype}")
            declared = self.spec.state[self.spec.state_names.index(name)]
            shape = declared.shape_for(param.shape)
            if shape is None:
                raise ValueError(
                    f"{where} has buffer {name!r}, which params[{index}] of shape "
                    f"{param.shape} does not keep"
                )
            if value.shape != shape:
                raise ValueError(
                    f"{where}[{name!r}] has shape {value.shape}, "
                    + (
                        f"params[{index}] has shape {param.shape}"
                        if declared.shape is None
                        else f"it must be {shape} for params[{index}] of shape {param.shape}"
                    )
                )
            buffers[name] = value.astype(param.dtype)
        return int(step), buffers

    def _saved_scalars(self, saved_state, saved_groups):
        """The group scalars of a saved state: each group's arrays must agree on them."""
        scalars = []
        for i, group in enumerate(saved_groups):
            values = self._initial_scalars({**self._groups[i], **group})
            for scalar in self.spec.group_scalars:
                seen = set()
                for index in group["params"]:
                    entry = saved_state.get(index, {})
                    if scalar.name in entry:
                        seen.add(scalar.check(f"state[{index}]", entry[scalar.name]))
                if len(seen) > 1:
                    raise ValueError(
                        f"param_groups[{i}]: arrays of one group differ in {scalar.name}"
                    )
                if seen:
                    values[scalar.name] = seen.pop()
            scalars.append(values)
        return scalars

    # ---------------------------------------------------------------- copies
    def __getstate__(self):
        """Arrays, options and state: a copy or a pickle holds no address of the original's
        memory, and steps exactly as the original would."""
        return {
            "groups": [dict(group) for group in self._groups],
            "defaults": self.defaults,
            "settings": {
                "clip_norm": self._clip_norm,
                "nonfinite": self.nonfinite,
                "flush_denormals": self._flush_denormals,
                "dispatch": self._dispatch,
            },
            "state": self.state_dict(),
        }

    def __setstate__(self, saved):
        defaults = dict(saved["defaults"])
        extras = {name: defaults.pop(name) for name in EXTRA_OPTIONS}
        Optimizer.__init__(self, saved["groups"], defaults, **extras, **saved["settings"])
        self.load_state_dict(saved["state"])


def _initial(declared, group):
    """A state buffer's or group scalar's value before the first step, under ``group``'s
    options (``initial`` is a number or the name of an option)."""
    initial = declared.initial
    return group[initial] if isinstance(initial, str) else initial


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


def _structure(groups):
    """The identities of the groups' arrays, group by group: what a layout is built from."""
    return tuple(
        tuple(map(id, group.get("params", ()))) if isinstance(group, dict) else None
        for group in groups
    )


def _spans(params):
    """(starts, ends, owners) of the parameters' memory, sorted by start (empty arrays left
    out): a gradient overlaps parameter ``owners[k]`` where ``starts[k] < its end`` and
    ``ends[k] > its start``."""
    spans = sorted(
        (p.ctypes.data, p.ctypes.data + p.nbytes, i) for i, p in enumerate(params) if p.size
    )
    return [s for s, _, _ in spans], [e for _, e, _ in spans], [i for _, _, i in spans]


def _gradient_row(group):
    """The hyper values every kernel reads first: grad_scale, clip_value, l1, maximize.

    grad_scale is 1 here; a step with ``clip_norm`` overwrites it with the clipping factor.
    """
    clip_value = validation.optional_positive("clip_value", group["clip_value"])
    validation.optional_positive("max_norm", group["max_norm"])
    return (
        1.0,
        math.inf if clip_value is None else clip_value,
        validation.real("l1", group["l1"]),
        float(validation.flag("maximize", group["maximize"])),
    )


def _clip_factor(clip_norm, norm):
    """``min(1, clip_norm / (norm + 1e-6))``, NaN for a NaN norm (as torch's clip_grad_norm_)."""
    factor = clip_norm / (norm + CLIP_NORM_EPS)
    return factor if factor < 1.0 or math.isnan(factor) else 1.0


def _unpack_state_dict(state_dict, param_groups):
    """(saved groups, saved state, skipped_steps) of a state dict, its outline validated."""
    if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
        raise ValueError("state_dict must be a dict with keys 'state' and 'param_groups'")
    saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
    if not isinstance(saved_groups, list | tuple) or not all(
        isinstance(g, dict) for g in saved_groups
    ):
        raise TypeError("state_dict['param_groups'] must be a list of dicts")
    if not isinstance(saved_state, dict):
        raise TypeError(f"state_dict['state'] must be a dict, got {type(saved_state).__name__}")
    if len(saved_groups) != len(param_groups):
        raise ValueError(
            f"state_dict has {len(saved_groups)} param groups, the optimizer has "
            f"{len(param_groups)}"
        )
    count = sum(len(g["params"]) for g in param_groups)
    for key in saved_state:
        if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < count:
            raise ValueError(
                f"state_dict['state'] keys must be the integers 0 to {count - 1}, got {key!r}"
                + (" (a JSON round trip makes them strings)" if isinstance(key, str) else "")
            )
    first = 0
    for i, (saved, mine) in enumerate(zip(saved_groups, param_groups, strict=True)):
        expected = list(range(first, first + len(mine["params"])))
        if list(saved.get("params", ())) != expected:
            raise ValueError(
                f"state_dict param_groups[{i}]['params'] must be {expected} (the arrays of "
                f"the optimizer's group), got {saved.get('params')!r}"
            )
        first += len(mine["params"])
    skipped = validation.integer("state_dict['skipped_steps']", state_dict.get("skipped_steps", 0))
    return saved_groups, saved_state, skipped


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
