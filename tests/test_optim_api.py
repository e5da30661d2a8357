"""The optimizer contract: construction, param groups, state round trip, one call per step."""

import copy
import pickle
import re
import subprocess
import sys

import numba
import numpy as np
import pytest
from optim_helpers import DTYPES, make_grads, make_params

from optbench import optim, registry
from optbench.kernels._config import SERIAL
from optbench.kernels.drivers import drivers

INFOS = pytest.mark.parametrize("info", registry.specs(), ids=lambda info: info.name)


def test_readme_example_runs():
    params = [np.zeros((64, 32), np.float32), np.zeros(32, np.float32)]
    grads = [np.ones((64, 32), np.float32), np.ones(32, np.float32)]
    opt = optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    opt.step(grads)
    # First Adam step moves every element by lr in the direction opposite to the gradient.
    np.testing.assert_allclose(params[0], -1e-3, rtol=1e-6)
    assert params[0].dtype == np.float32


@INFOS
@pytest.mark.parametrize("dtype", DTYPES)
def test_state_dict_round_trip_is_bit_identical(info, dtype, rng):
    params = make_params(rng, dtype, spec=info)
    opt = optim.make(info, params, **info.variants[-1].options)
    for _ in range(7):
        opt.step(make_grads(rng, params))
    saved = opt.state_dict()
    twins = [p.copy() for p in params]
    clone = optim.make(info, twins)
    clone.load_state_dict(saved)
    assert clone.param_groups[0].keys() == opt.param_groups[0].keys()
    for _ in range(7):
        grads = make_grads(rng, params)
        opt.step(grads)
        clone.step(grads)
    for a, b in zip(params, twins, strict=True):
        np.testing.assert_array_equal(a, b)
    final, cloned = opt.state_dict()["state"], clone.state_dict()["state"]
    for i in final:
        assert final[i].keys() == cloned[i].keys()
        for name in final[i]:
            np.testing.assert_array_equal(final[i][name], cloned[i][name])


def test_state_dict_holds_copies_and_plain_types(rng):
    params = make_params(rng, np.float64)
    opt = optim.Adam(params, amsgrad=True)
    opt.step(make_grads(rng, params))
    saved = opt.state_dict()
    before = saved["state"][0]["exp_avg"].copy()
    opt.step(make_grads(rng, params))
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], before)
    assert set(saved["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert isinstance(saved["state"][0]["step"], int)
    assert saved["param_groups"][0]["params"] == list(range(len(params)))


def test_load_state_dict_rejects_mismatch_and_changes_nothing(rng):
    params = make_params(rng, np.float64)
    opt = optim.Adam(params)
    opt.step(make_grads(rng, params))
    saved = opt.state_dict()
    before = opt.state_dict()
    broken = {**saved, "state": {**saved["state"], 0: {**saved["state"][0]}}}
    broken["state"][0]["exp_avg"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"state\[0\]\['exp_avg'\] has shape"):
        opt.load_state_dict(broken)
    bad_lr = {**saved, "param_groups": [{**saved["param_groups"][0], "lr": -1.0}]}
    with pytest.raises(ValueError, match="lr"):
        opt.load_state_dict(bad_lr)
    with pytest.raises(ValueError, match="param groups"):
        opt.load_state_dict({**saved, "param_groups": saved["param_groups"] * 2})
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for i in before["state"]:
        for name in before["state"][i]:
            np.testing.assert_array_equal(after["state"][i][name], before["state"][i][name])


def test_adagrad_initial_accumulator_is_per_group(rng):
    params = make_params(rng, np.float64)
    opt = optim.Adagrad(
        [{"params": params[:1], "initial_accumulator_value": 0.5}, {"params": params[1:]}]
    )
    state = opt.state_dict()["state"]
    assert (state[0]["sum"] == 0.5).all()
    assert (state[1]["sum"] == 0.0).all()


def test_mixed_dtypes_step_each_dtype(rng):
    params = make_params(rng, np.float32, ((4, 3),)) + make_params(rng, np.float64, ((5,),))
    twins = [p.copy() for p in params]
    opt = optim.Adam(params)
    singles = [optim.Adam([p]) for p in twins]
    for _ in range(3):
        grads = make_grads(rng, params)
        opt.step(grads)
        for single, grad in zip(singles, grads, strict=True):
            single.step([grad])
    for a, b in zip(params, twins, strict=True):
        np.testing.assert_array_equal(a, b)


class CountingKernel:
    def __init__(self, kernel):
        self.kernel, self.calls = kernel, 0

    def __call__(self, *args):
        self.calls += 1
        return self.kernel(*args)


def test_one_compiled_call_per_step_for_many_arrays(rng, monkeypatch):
    shapes = [(rng.integers(1, 9), rng.integers(1, 9)) for _ in range(100)]
    params = make_params(rng, np.float32, shapes)
    serial, parallel = (CountingKernel(k) for k in drivers(optim.Adam.spec.chunk))
    monkeypatch.setattr(
        optim.base, "drivers", lambda chunk, reduce=None, split=False: (serial, parallel)
    )
    opt = optim.Adam(params)
    for _ in range(3):
        opt.step(make_grads(rng, params))
    assert serial.calls + parallel.calls == 3


def test_grad_buffers_reused_in_place_are_followed(rng):
    """Steps that reuse the same gradient arrays see their new contents (addresses are cached)."""
    params = make_params(rng, np.float64)
    twins = [p.copy() for p in params]
    opt, fresh = optim.SGD(params, lr=0.1), optim.SGD(twins, lr=0.1)
    grads = make_grads(rng, params)
    for _ in range(3):
        for g in grads:
            g[...] = rng.standard_normal(g.shape)
        opt.step(grads)
        fresh.step([g.copy() for g in grads])
    for a, b in zip(params, twins, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "info", [s for s in registry.specs() if s.fused], ids=lambda info: info.name
)
def test_float32_kernels_never_widen_elements_to_float64(info, rng):
    """Scalars are cast to float32 in the kernel: no ``fpext float -> double`` in the machine IR."""
    params = make_params(rng, np.float32, spec=info)
    opt = optim.make(info, params, **info.variants[-1].options)
    opt.step(make_grads(rng, params))
    if info.reduce is None:
        serial = drivers(info.chunk)[0]
        signature = next(sig for sig in serial.signatures if "float32" in str(sig[3]))
        uncached = numba.njit(**{**SERIAL, "cache": False})(serial.py_func)
    else:  # the update alone: a reduce pass sums squares in float64 by design
        f32, f64 = numba.float32[::1], numba.float64[::1]
        signature = (f32, f32, numba.float32[:, ::1], numba.int64, f64, f64, numba.int64)
        signature += (numba.int64, f64)
        uncached = numba.njit(**{**SERIAL, "cache": False})(info.chunk.py_func)
    uncached.compile(signature)
    ir = uncached.inspect_llvm(signature)
    assert re.search(r"fmul [^\n]*float", ir), "no float32 arithmetic found"
    assert not re.search(r"fpext [^\n]*float[^\n]* to [^\n]*double", ir)


def test_import_compiles_nothing_and_is_fast():
    code = (
        "import time; t = time.perf_counter(); import optbench, optbench.optim, optbench.registry;"
        "elapsed = time.perf_counter() - t;"
        "from optbench.kernels import optimizers as k;"
        "print(elapsed, sum(len(getattr(k, n).signatures) for n in dir(k) "
        "if n.endswith(('_serial', '_parallel'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    elapsed, compiled = out.stdout.split()
    assert int(compiled) == 0
    assert float(elapsed) < 1.0


# --------------------------------------------------------------------------------------------
# param_groups: every change is seen by the next step
# --------------------------------------------------------------------------------------------
CHANGES = {
    "item": lambda group: group.__setitem__("lr", 0.5),
    "update": lambda group: group.update(lr=0.5),
    "update from a dict": lambda group: group.update({"lr": 0.5}),
    "in-place or": lambda group: group.__ior__({"lr": 0.5}),
    "pop and setdefault": lambda group: (group.pop("lr"), group.setdefault("lr", 0.5)),
    "delete and set": lambda group: (group.__delitem__("lr"), group.__setitem__("lr", 0.5)),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_every_change_of_a_group_is_followed(change):
    param = np.zeros(3)
    opt = optim.SGD([param], lr=0.1)
    grads = [np.ones(3)]
    opt.step(grads)
    np.testing.assert_array_equal(param, -0.1)
    version = opt.param_groups[0].version
    change(opt.param_groups[0])
    assert opt.param_groups[0].version > version
    opt.step(grads)
    np.testing.assert_array_equal(param, -0.6)


def test_a_plain_dict_put_in_param_groups_is_followed():
    param = np.zeros(3)
    opt = optim.SGD([param], lr=0.1)
    grads = [np.ones(3)]
    opt.step(grads)
    opt.param_groups[0] = dict(opt.param_groups[0])
    opt.step(grads)
    np.testing.assert_array_equal(param, -0.2)
    opt.param_groups[0]["lr"] = 0.5  # a plain dict: compared by value
    opt.step(grads)
    np.testing.assert_array_equal(param, -0.7)


def test_param_groups_are_dicts_that_copy_and_pickle():
    opt = optim.Adam([np.zeros(3)], lr=0.1)
    group = opt.param_groups[0]
    assert isinstance(group, dict) and group["lr"] == 0.1
    for twin in (pickle.loads(pickle.dumps(group)), copy.deepcopy(group)):
        assert type(twin) is optim.ParamGroup and twin.keys() == group.keys()
        np.testing.assert_array_equal(twin["params"][0], group["params"][0])
