"""The fused extras on every optimizer: clipping, L1, max-norm and the non-finite policies."""

import numba
import numpy as np
import pytest
from optim_helpers import DTYPES, make_grads, make_params, run_side_by_side

from optbench import optim, registry
from optbench.kernels import chunks

EXTRAS = (
    {"clip_value": 0.5},
    {"clip_norm": 1.0},  # random gradients of ~110 elements have norm ~10: clipped
    {"clip_norm": 1e3},  # never reached: the factor is exactly 1
    {"l1": 0.01},
    {"max_norm": 1.5},
    {"clip_value": 0.3, "l1": 0.01, "maximize": True, "max_norm": 2.0, "weight_decay": 0.1},
)
CASES = [
    pytest.param(info, extras, id=f"{info.name}-{i}")
    for info in registry.specs()
    for i, extras in enumerate(EXTRAS)
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("info", "extras"), CASES)
def test_extras_match_reference(info, extras, dtype, rng):
    if "weight_decay" not in info.defaults:  # Rprop has none
        extras = {k: v for k, v in extras.items() if k != "weight_decay"}
    params = make_params(rng, dtype, scale=0.5, spec=info)
    run_side_by_side(info, optim.make(info, params, **extras), params, rng, 50)


def test_clip_norm_below_threshold_changes_nothing(rng):
    params = make_params(rng, np.float32)
    twins = [p.copy() for p in params]
    clipped, plain = optim.Adam(params, clip_norm=1e6), optim.Adam(twins)
    for _ in range(5):
        grads = make_grads(rng, params)
        clipped.step(grads)
        plain.step(grads)
    for a, b in zip(params, twins, strict=True):
        np.testing.assert_array_equal(a, b)


def test_clip_norm_above_threshold_scales_to_it(rng):
    params = make_params(rng, np.float64)
    opt = optim.SGD(params, lr=1.0, clip_norm=0.5)
    before = [p.copy() for p in params]
    grads = make_grads(rng, params)
    opt.step(grads)
    step_norm = np.sqrt(sum(np.sum((b - p) ** 2) for b, p in zip(before, params, strict=True)))
    np.testing.assert_allclose(step_norm, 0.5, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_norm_is_bitwise_identical_for_one_and_two_threads(dtype, rng, monkeypatch):
    monkeypatch.setattr(optim.base, "PARALLEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(chunks, "CHUNK_ELEMENTS", 1000)
    params = make_params(rng, dtype, ((300, 41), (5000,), (7,)))
    opt = optim.SGD(params, clip_norm=1.0)
    grads = make_grads(rng, params)
    opt.step(grads)
    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        try:
            results.append(opt._gradient_statistics()[0])
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert results[0] == results[1]
    exact = sum(np.sum(np.square(g, dtype=np.float64)) for g in grads)
    np.testing.assert_allclose(results[0], exact, rtol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_norm_rescales_only_columns_above_r(dtype):
    weight = np.array([[3.0, 6.0, 0.5], [4.0, 8.0, 0.5]], dtype)  # column norms 5, 10, 0.71
    bias = np.array([30.0, 40.0], dtype)
    opt = optim.SGD([weight, bias], lr=0.0, max_norm=5.0)
    opt.step([np.zeros_like(weight), np.zeros_like(bias)])
    expected = np.array([[3.0, 3.0, 0.5], [4.0, 4.0, 0.5]], dtype)
    np.testing.assert_array_equal(weight[:, [0, 2]], expected[:, [0, 2]])  # at or below r
    np.testing.assert_allclose(weight[:, 1], expected[:, 1], rtol=2 * np.finfo(dtype).eps)
    np.testing.assert_array_equal(bias, [30.0, 40.0])  # 1-D parameters are left alone


def test_max_norm_follows_param_groups_between_steps():
    weight = np.array([[3.0, 6.0], [4.0, 8.0]])  # column norms 5 and 10
    opt = optim.SGD([weight], lr=0.0)
    grads = [np.zeros_like(weight)]
    opt.step(grads)
    assert weight[0, 1] == 6.0
    opt.param_groups[0]["max_norm"] = 5.0
    opt.step(grads)
    np.testing.assert_allclose(weight[:, 1], [3.0, 4.0], rtol=1e-15)
    opt.param_groups[0]["max_norm"] = None
    weight[:, 1] = [6.0, 8.0]
    opt.step(grads)
    assert weight[0, 1] == 6.0


SHAPES = ((4, 3), (5,), (2, 2, 2))
POSITIONS = [(array, element) for array in (0, 1, 2) for element in ("first", "middle", "last")]


def poisoned(rng, params, array, element, value):
    grads = make_grads(rng, params)
    flat = grads[array].reshape(-1)
    flat[{"first": 0, "middle": flat.size // 2, "last": -1}[element]] = value
    return grads


def snapshot(opt, params):
    state = opt.state_dict()["state"]
    return [p.copy() for p in params] + [
        np.asarray(v).copy() for entry in state.values() for v in entry.values()
    ]


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(("array", "element"), POSITIONS)
@pytest.mark.parametrize("info", registry.specs(), ids=lambda info: info.name)
def test_nonfinite_raise_names_the_array_and_touches_nothing(info, array, element, value, rng):
    params = make_params(rng, np.float32, SHAPES, spec=info)
    opt = optim.make(info, params, nonfinite="raise")
    opt.step(make_grads(rng, params))
    before = snapshot(opt, params)
    with pytest.raises(FloatingPointError, match=rf"grads\[{array}\] contains NaN or Inf"):
        opt.step(poisoned(rng, params, array, element, value))
    for a, b in zip(snapshot(opt, params), before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize(("array", "element"), POSITIONS)
def test_nonfinite_skip_counts_and_touches_nothing(array, element, value, rng):
    params = make_params(rng, np.float64, SHAPES)
    opt = optim.Adam(params, nonfinite="skip", clip_norm=1.0)
    opt.step(make_grads(rng, params))
    before = snapshot(opt, params)
    opt.step(poisoned(rng, params, array, element, value))
    for a, b in zip(snapshot(opt, params), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert opt.skipped_steps == 1
    assert opt.state_dict()["skipped_steps"] == 1
    opt.step(make_grads(rng, params))
    assert opt.state_dict()["state"][0]["step"] == 2  # the skipped step did not count


def test_nonfinite_propagate_is_the_default(rng):
    params = make_params(rng, np.float64, SHAPES)
    opt = optim.Adam(params)
    opt.step(poisoned(rng, params, 1, "middle", np.nan))
    assert np.isnan(params[1][2]) and np.isfinite(params[0]).all()


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"clip_value": 0.0}, ValueError, "clip_value"),
        ({"clip_value": -1.0}, ValueError, "clip_value"),
        ({"clip_value": "1"}, TypeError, "clip_value"),
        ({"clip_norm": 0.0}, ValueError, "clip_norm"),
        ({"clip_norm": float("nan")}, ValueError, "clip_norm"),
        ({"max_norm": -2.0}, ValueError, "max_norm"),
        ({"l1": -0.1}, ValueError, "l1"),
        ({"nonfinite": "ignore"}, ValueError, "nonfinite"),
    ],
)
def test_bad_extras(options, error, match):
    with pytest.raises(error, match=match):
        optim.Adam([np.zeros(3)], **options)
