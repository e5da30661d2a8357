"""Optimizers built from other optimizers: Lookahead and a hand-over from one to another."""

import numpy as np

from . import validation
from .kernels import optimizers as kernels
from .optim import Optimizer, work_table


def _check_inner(name, inner):
    if not isinstance(inner, Optimizer):
        raise TypeError(f"{name} must be an optbench optimizer, got {type(inner).__name__}")


def _lookahead_options(k, alpha):
    return validation.integer("k", k, 1), validation.real("alpha", alpha, 0.0, 1.0)


def _by_dtype(arrays):
    """``arrays`` in lists of one dtype each, in order of first appearance."""
    by_dtype = {}
    for array in arrays:
        by_dtype.setdefault(array.dtype, []).append(array)
    return list(by_dtype.values())


def _check_writeable(arrays):
    for i, array in enumerate(arrays):
        if not array.flags.writeable:
            raise ValueError(f"params[{i}] is read-only")


def _flat_copies(arrays):
    """One flat copy of each dtype's arrays, laid side by side (as ``lookahead_sync`` reads)."""
    return [np.concatenate([a.reshape(-1) for a in group]) for group in _by_dtype(arrays)]


def _put(arrays, flats):
    """Write the flat copies of :func:`_flat_copies` back into ``arrays``."""
    for group, flat in zip(_by_dtype(arrays), flats, strict=True):
        start = 0
        for array in group:
            array.reshape(-1)[:] = flat[start : start + array.size]
            start += array.size


def _sync_layout(arrays):
    """(work table, data addresses) of each dtype's arrays, for ``lookahead_sync``."""
    return [
        (work_table(group), np.array([a.ctypes.data for a in group], np.intp))
        for group in _by_dtype(arrays)
    ]


class Lookahead:
    r"""Lookahead (Zhang et al. 2019): ``k`` fast steps of ``inner``, then one slow step.

    .. math::
        \phi \leftarrow \phi + \alpha(\theta - \phi), \quad \theta \leftarrow \phi
        \qquad \text{after every } k \text{ steps of the inner optimizer}

    The slow weights start as a copy of the parameters. The inner optimizer's state carries on
    through the synchronization, as in the paper's reference implementation.

    ``eval()`` puts the slow weights in the parameters (after the inner optimizer's own
    ``eval()``) and keeps the fast ones aside; ``train()`` puts the fast ones back; ``step``
    refuses to run in eval mode, and ``state_dict`` keeps the mode and the fast weights.

    Parameters
    ----------
    inner : Optimizer
    k : int, >= 1 (default 5)
    alpha : float in [0, 1] (default 0.5)
    """

    def __init__(self, inner, k=5, alpha=0.5):
        _check_inner("inner", inner)
        self.inner = inner
        self.k, self.alpha = _lookahead_options(k, alpha)
        self.fast_steps = 0
        self._layout = _sync_layout(inner.params)
        self.slow = _flat_copies(inner.params)
        self.fast = None  # the fast weights, while the slow ones are in the parameters

    def __getstate__(self):
        """Everything but the parameters' addresses, which a copy or a pickle must not keep."""
        return {k: v for k, v in self.__dict__.items() if k != "_layout"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._layout = _sync_layout(self.inner.params)

    @property
    def param_groups(self):
        return self.inner.param_groups

    @property
    def training(self):
        return self.fast is None

    def eval(self):
        """The slow weights into the parameters (the fast ones kept aside). Returns self."""
        if self.fast is None:
            _check_writeable(self.inner.params)
            self.inner.eval()
            self.fast = _flat_copies(self.inner.params)
            _put(self.inner.params, self.slow)
        return self

    def train(self):
        """The fast weights back into the parameters. Returns self."""
        if self.fast is not None:
            _check_writeable(self.inner.params)
            _put(self.inner.params, self.fast)
            self.fast = None
            self.inner.train()
        return self

    evaluating = Optimizer.evaluating

    def step(self, grads):
        """One inner step; every ``k``-th also synchronizes slow and fast weights."""
        if self.fast is not None:
            raise RuntimeError(
                "Lookahead.step() in eval mode: the parameters hold the slow weights; "
                "call optimizer.train() first"
            )
        self.inner.step(grads)
        self.fast_steps += 1
        if self.fast_steps % self.k == 0:
            for (work, addresses), slow in zip(self._layout, self.slow, strict=True):
                if work.shape[0]:
                    kernels.lookahead_sync(work, addresses, slow, self.alpha)

    def state_dict(self):
        return {
            "inner": self.inner.state_dict(),
            "k": self.k,
            "alpha": self.alpha,
            "fast_steps": self.fast_steps,
            "slow": [s.copy() for s in self.slow],
            "fast": None if self.fast is None else [f.copy() for f in self.fast],
        }

    def load_state_dict(self, state_dict):
        slow = [np.asarray(s) for s in state_dict["slow"]]
        if [s.shape for s in slow] != [s.shape for s in self.slow]:
            raise ValueError("state_dict['slow'] does not match this optimizer's parameters")
        fast = state_dict.get("fast")
        if fast is not None:
            fast = [np.array(f, dtype=s.dtype) for f, s in zip(fast, self.slow, strict=True)]
            if [f.shape for f in fast] != [s.shape for s in self.slow]:
                raise ValueError("state_dict['fast'] does not match this optimizer's parameters")
        k, alpha = _lookahead_options(state_dict["k"], state_dict["alpha"])
        self.inner.load_state_dict(state_dict["inner"])
        self.k, self.alpha = k, alpha
        self.fast_steps = int(state_dict["fast_steps"])
        for mine, saved in zip(self.slow, slow, strict=True):
            mine[:] = saved
        self.fast = fast


class Switch:
    """Start with one optimizer and hand over to another after ``at_step`` steps.

    The lecture notes' advice for Adam vs SGD with momentum: Adam is fast at first, SGD with
    momentum generalizes better at the end, so begin with one and end with the other. Both
    optimizers are built by the caller over the same parameter arrays, in the same order.

    Hand-over: steps ``1 .. at_step`` go to ``first``, later steps to ``second``. ``second``
    starts from its fresh state at step ``at_step + 1`` (for SGD, its momentum buffer starts as
    that step's gradient); nothing of ``first``'s state carries over. Where ``first`` keeps
    other weights to evaluate (Schedule-Free's average x), ``second`` starts from those: the
    weights ``first`` would deliver, not its training point. ``param_groups``, ``training``,
    ``train()`` and ``eval()`` are the active optimizer's, so a schedule acts on whichever is
    stepping and an evaluation sees its weights.
    """

    def __init__(self, first, second, at_step):
        _check_inner("first", first)
        _check_inner("second", second)
        if len(first.params) != len(second.params) or any(
            a is not b for a, b in zip(first.params, second.params, strict=True)
        ):
            raise ValueError("first and second must optimize the same arrays, in the same order")
        self.first, self.second = first, second
        self.at_step = validation.integer("at_step", at_step)
        self.steps = 0

    @property
    def active(self):
        """The optimizer that takes the next step."""
        return self.first if self.steps < self.at_step else self.second

    @property
    def param_groups(self):
        return self.active.param_groups

    @property
    def training(self):
        return self.active.training

    def eval(self):
        """The active optimizer's eval mode (see ``Optimizer.eval``); returns the wrapper."""
        self.active.eval()
        return self

    def train(self):
        """The active optimizer's train mode (see ``Optimizer.train``); returns the wrapper."""
        self.active.train()
        return self

    evaluating = Optimizer.evaluating

    def step(self, grads):
        """A step of the active optimizer. At the hand-over ``first`` goes to eval mode, so
        that the parameters hold the weights it would deliver when ``second`` takes over."""
        if self.steps == self.at_step > 0 and self.second.training:
            self.first.eval()
        self.active.step(grads)
        self.steps += 1

    def state_dict(self):
        return {
            "steps": self.steps,
            "at_step": self.at_step,
            "first": self.first.state_dict(),
            "second": self.second.state_dict(),
        }

    def load_state_dict(self, state_dict):
        self.first.load_state_dict(state_dict["first"])
        self.second.load_state_dict(state_dict["second"])
        self.steps, self.at_step = int(state_dict["steps"]), int(state_dict["at_step"])
