"""Kernel dispatch (``dispatch="auto" | "serial" | "parallel"``) and ``flush_denormals``."""

import numba
import numpy as np
import pytest
from optim_helpers import make_grads, make_params

from optbench import optim, registry
from optbench.kernels import _fpenv, chunks
from optbench.kernels.drivers import drivers

needs_x86 = pytest.mark.skipif(not _fpenv.SUPPORTED, reason="flush_denormals needs x86-64")
F32_TINY = np.finfo(np.float32).tiny  # smallest normal float32, 1.18e-38


# --------------------------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("info", registry.specs(), ids=lambda info: info.name)
def test_every_dispatch_mode_gives_the_same_bits(info, rng, monkeypatch):
    monkeypatch.setattr(optim.base, "PARALLEL_MIN_ELEMENTS", 0)  # "auto" chooses at every size
    monkeypatch.setattr(chunks, "CHUNK_ELEMENTS", 50)
    params = make_params(rng, np.float32, ((40, 7), (301,), (3,)), spec=info)
    copies = {mode: [p.copy() for p in params] for mode in optim.DISPATCH_MODES}
    optimizers = {
        mode: optim.make(info, copies[mode], dispatch=mode, **info.variants[-1].options)
        for mode in optim.DISPATCH_MODES
    }
    for _ in range(12):
        grads = make_grads(rng, params)
        for optimizer in optimizers.values():
            optimizer.step(grads)
    for mode in ("serial", "parallel"):
        for a, b in zip(copies["auto"], copies[mode], strict=True):
            np.testing.assert_array_equal(a, b)


class _Counting:
    def __init__(self, kernel):
        self.kernel, self.calls = kernel, 0

    def __call__(self, *args):
        self.calls += 1
        return self.kernel(*args)


def _counted(monkeypatch):
    serial, parallel = (_Counting(k) for k in drivers(optim.Adam.spec.chunk))
    monkeypatch.setattr(
        optim.base, "drivers", lambda chunk, reduce=None, split=False: (serial, parallel)
    )
    return serial, parallel


def test_auto_steps_small_models_serially(rng, monkeypatch):
    serial, parallel = _counted(monkeypatch)
    params = make_params(rng, np.float64)
    opt = optim.Adam(params)
    for _ in range(20):
        opt.step(make_grads(rng, params))
    assert (serial.calls, parallel.calls) == (20, 0)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
@pytest.mark.parametrize(("mode", "expected"), [("serial", (5, 0)), ("parallel", (0, 5))])
def test_forced_modes_use_one_kernel(mode, expected, rng, monkeypatch):
    serial, parallel = _counted(monkeypatch)
    params = make_params(rng, np.float32)
    opt = optim.Adam(params, dispatch=mode)
    for _ in range(5):
        opt.step(make_grads(rng, params))
    assert (serial.calls, parallel.calls) == expected


def test_one_thread_is_always_serial(rng, monkeypatch):
    serial, parallel = _counted(monkeypatch)
    params = make_params(rng, np.float32)
    opt = optim.Adam(params, dispatch="parallel")
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        opt.step(make_grads(rng, params))
    finally:
        numba.set_num_threads(previous)
    assert (serial.calls, parallel.calls) == (1, 0)


def test_dispatch_is_validated(rng):
    params = make_params(rng, np.float32)
    with pytest.raises(ValueError, match="dispatch must be one of"):
        optim.SGD(params, dispatch="threads")
    opt = optim.SGD(params)
    with pytest.raises(ValueError, match="dispatch must be one of"):
        opt.dispatch = True
    assert opt.dispatch == "auto"


def _drive(times, steps):
    """Run a _Dispatch for ``steps`` steps with ``times(parallel, step)`` as the step time;
    return the kernel it chose at each step."""
    dispatch = optim.dispatch.Dispatch()
    chosen = []
    for step in range(steps):
        chosen.append(dispatch.parallel)
        dispatch.record(times(dispatch.parallel, step))
    return np.array(chosen)


def test_auto_settles_on_the_faster_kernel():
    parallel_faster = _drive(lambda parallel, _: 1.0 if parallel else 2.0, 2000)
    serial_faster = _drive(lambda parallel, _: 5.0 if parallel else 2.0, 2000)
    # after the first trials, only the periodic trials of the slower kernel remain
    assert parallel_faster[100:].mean() > 0.97
    assert serial_faster[100:].mean() < 0.03


def test_auto_ignores_the_first_step_of_a_run():
    """The first step on a kernel pays for the switch (compilation, waking threads): a huge
    first parallel step must not make the faster parallel kernel lose."""
    chosen = _drive(lambda parallel, step: (1000.0 if step == 0 else 1.0) if parallel else 2.0, 200)
    assert chosen[50:].mean() > 0.9


def test_auto_follows_a_change_of_regime():
    """Parallel fast for 500 steps (threads kept awake), then slow (threads idle between
    steps): the choice follows within a few steps of the change."""
    chosen = _drive(lambda parallel, step: (1.0 if step < 500 else 9.0) if parallel else 2.0, 1000)
    assert chosen[100:500].mean() > 0.95
    assert chosen[520:].mean() < 0.05


# --------------------------------------------------------------------------------------------
# flush_denormals
# --------------------------------------------------------------------------------------------
def _adam_with_state(param, exp_avg, exp_avg_sq, **options):
    opt = optim.Adam([param], **options)
    state = opt.state_dict()
    state["state"][0].update(step=3, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    opt.load_state_dict(state)
    return opt


@needs_x86
@pytest.mark.parametrize("dispatch", ["serial", "parallel"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flushed_step_equals_a_step_from_zeroed_subnormals(dtype, dispatch, rng, monkeypatch):
    """Subnormal moments are read as zero: the step equals the unflushed one from a state whose
    subnormals were set to zero (normal gradients: no subnormal appears in between)."""
    monkeypatch.setattr(chunks, "CHUNK_ELEMENTS", 64)
    tiny = np.finfo(dtype).tiny
    n = 1000
    subnormal = (rng.uniform(0.01, 0.99, n) * tiny).astype(dtype)
    assert np.all((subnormal > 0) & (subnormal < tiny))
    exp_avg = np.where(rng.random(n) < 0.5, subnormal, rng.standard_normal(n)).astype(dtype)
    exp_avg_sq = np.where(rng.random(n) < 0.5, subnormal, rng.random(n)).astype(dtype)
    zeroed = [np.where(np.abs(a) < tiny, 0, a).astype(dtype) for a in (exp_avg, exp_avg_sq)]
    param = rng.standard_normal(n).astype(dtype)
    twin = param.copy()
    flushed = _adam_with_state(param, exp_avg, exp_avg_sq, flush_denormals=True, dispatch=dispatch)
    plain = _adam_with_state(twin, *zeroed, dispatch=dispatch)
    grad = (rng.standard_normal(n) + 3.0).astype(dtype)
    flushed.step([grad])
    plain.step([grad])
    np.testing.assert_array_equal(param, twin)
    for name in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_array_equal(
            flushed.state_dict()["state"][0][name], plain.state_dict()["state"][0][name]
        )


@needs_x86
@pytest.mark.parametrize("dispatch", ["serial", "parallel"])
def test_results_that_would_be_subnormal_are_zero(dispatch, monkeypatch):
    """A zero gradient decays m = 0.9 m from 1.05x the smallest normal float32 into the
    subnormal range: zero with flush_denormals, a subnormal without."""
    monkeypatch.setattr(chunks, "CHUNK_ELEMENTS", 64)
    n = 500
    start = np.full(n, 1.05 * F32_TINY, np.float32)
    results = {}
    for flush in (False, True):
        opt = _adam_with_state(
            np.zeros(n, np.float32), start, start, flush_denormals=flush, dispatch=dispatch
        )
        opt.step([np.zeros(n, np.float32)])
        results[flush] = opt.state_dict()["state"][0]["exp_avg"]
    assert np.all((results[False] > 0) & (results[False] < F32_TINY))
    assert np.all(results[True] == 0)


@needs_x86
@pytest.mark.parametrize("dispatch", ["serial", "parallel"])
def test_flush_leaves_the_callers_floating_point_environment_alone(dispatch, rng):
    before = _fpenv.current_mxcsr()
    params = make_params(rng, np.float32)
    opt = optim.Adam(params, flush_denormals=True, dispatch=dispatch)
    opt.step(make_grads(rng, params))
    assert _fpenv.current_mxcsr() == before
    assert np.float32(F32_TINY) * np.float32(0.25) > 0  # NumPy still makes subnormals


def test_flush_denormals_is_validated(rng):
    params = make_params(rng, np.float32)
    with pytest.raises(TypeError, match="flush_denormals must be True or False"):
        optim.Adam(params, flush_denormals=1)
    if not _fpenv.SUPPORTED:
        with pytest.raises(ValueError, match="x86-64"):
            optim.Adam(params, flush_denormals=True)


@needs_x86
def test_flush_denormals_can_be_switched_between_steps(monkeypatch):
    """The hyper table is cached by option values: the flag is part of the key."""
    n = 100
    start = np.full(n, 1.05 * F32_TINY, np.float32)
    opt = _adam_with_state(np.zeros(n, np.float32), start, start, dispatch="serial")
    opt.flush_denormals = True
    opt.step([np.zeros(n, np.float32)])
    assert np.all(opt.state_dict()["state"][0]["exp_avg"] == 0)
