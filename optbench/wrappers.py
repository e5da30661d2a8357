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
        self.slow = [
            np.concatenate([a.reshape(-1) for a in arrays]) for arrays in _by_dtype(inner.params)
        ]

    def __getstate__(self):
        """Everything but the parameters' addresses, which a copy or a pickle must not keep."""
        return {k: v for k, v in self.__dict__.items() if k != "_layout"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._layout = _sync_layout(self.inner.params)

    @property
    def param_groups(self):
        return self.inner.param_groups

    def step(self, grads):
        """One inner step; every ``k``-th also synchronizes slow and fast weights."""
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
        }

    def load_state_dict(self, state_dict):
        slow = [np.asarray(s) for s in state_dict["slow"]]
        if [s.shape for s in slow] != [s.shape for s in self.slow]:
            raise ValueError("state_dict['slow'] does not match this optimizer's parameters")
        k, alpha = _lookahead_options(state_dict["k"], state_dict["alpha"])
        self.inner.load_state_dict(state_dict["inner"])
        self.k, self.alpha = k, alpha
        self.fast_steps = int(state_dict["fast_steps"])
        for mine, saved in zip(self.slow, slow, strict=True):
            mine[:] = saved


class Switch:
    """Start with one optimizer and hand over to another after ``at_step`` steps.

    The lecture notes' advice for Adam vs SGD with momentum: Adam is fast at first, SGD with
    momentum generalizes better at the end, so begin with one and end with the other. Both
    optimizers are built by the caller over the same parameter arrays, in the same order.

    Hand-over: steps ``1 .. at_step`` go to ``first``, later steps to ``second``. ``second``
    starts from its fresh state at step ``at_step + 1`` (for SGD, its momentum buffer starts as
    that step's gradient); nothing of ``first``'s state carries over. ``param_groups`` is the
    active optimizer's, so a schedule acts on whichever is stepping.
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

    def step(self, grads):
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
