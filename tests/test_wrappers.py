"""Lookahead and Switch against plain NumPy bookkeeping, state round trips and bad input."""

import numpy as np
import pytest
from optim_helpers import DTYPES, make_grads, make_params

from optbench import optim
from optbench.wrappers import Lookahead, Switch


@pytest.mark.parametrize("dtype", DTYPES)
def test_lookahead_matches_the_algorithm(dtype, rng):
    params = make_params(rng, dtype)
    fast = [p.copy() for p in params]
    slow = [p.copy() for p in params]
    wrapped = Lookahead(optim.Adam(params, lr=1e-2), k=3, alpha=0.5)
    plain = optim.Adam(fast, lr=1e-2)
    for step in range(1, 11):
        grads = make_grads(rng, params)
        wrapped.step(grads)
        plain.step(grads)
        if step % 3 == 0:
            for f, s in zip(fast, slow, strict=True):
                s += dtype(0.5) * (f - s)
                f[...] = s
        for a, b in zip(params, fast, strict=True):
            np.testing.assert_allclose(a, b, rtol=4 * np.finfo(dtype).eps, atol=1e-7)


def test_lookahead_alpha_one_is_the_inner_optimizer(rng):
    params = make_params(rng, np.float64)
    twins = [p.copy() for p in params]
    wrapped, plain = Lookahead(optim.SGD(params, lr=0.1), k=2, alpha=1.0), optim.SGD(twins, lr=0.1)
    for _ in range(6):
        grads = make_grads(rng, params)
        wrapped.step(grads)
        plain.step(grads)
    for a, b in zip(params, twins, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)  # s + (f - s) rounds, it is not f exactly


def test_lookahead_state_round_trip(rng):
    params = make_params(rng, np.float32)
    opt = Lookahead(optim.Adam(params), k=4)
    for _ in range(6):
        opt.step(make_grads(rng, params))
    twins = [p.copy() for p in params]
    clone = Lookahead(optim.Adam(twins), k=4)
    clone.load_state_dict(opt.state_dict())
    for _ in range(7):
        grads = make_grads(rng, params)
        opt.step(grads)
        clone.step(grads)
    for a, b in zip(params, twins, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"k": 0}, ValueError, "k"),
        ({"alpha": 1.5}, ValueError, "alpha"),
        ({"alpha": "x"}, TypeError, "alpha"),
    ],
)
def test_lookahead_bad_options(options, error, match):
    with pytest.raises(error, match=match):
        Lookahead(optim.SGD([np.zeros(2)]), **options)


def test_switch_hands_over_at_the_step(rng):
    params = make_params(rng, np.float64)
    twins = [p.copy() for p in params]
    switch = Switch(optim.Adam(params, lr=1e-2), optim.SGD(params, lr=1e-2, momentum=0.9), 4)
    first, second = optim.Adam(twins, lr=1e-2), optim.SGD(twins, lr=1e-2, momentum=0.9)
    for step in range(1, 9):
        assert switch.active is (switch.first if step <= 4 else switch.second)
        grads = make_grads(rng, params)
        switch.step(grads)
        (first if step <= 4 else second).step(grads)
    for a, b in zip(params, twins, strict=True):
        np.testing.assert_array_equal(a, b)
    assert switch.param_groups is switch.second.param_groups


def test_switch_state_round_trip(rng):
    params = make_params(rng, np.float64)
    opt = Switch(optim.Adam(params), optim.SGD(params, momentum=0.9), 3)
    for _ in range(2):
        opt.step(make_grads(rng, params))
    twins = [p.copy() for p in params]
    clone = Switch(optim.Adam(twins), optim.SGD(twins, momentum=0.9), 3)
    clone.load_state_dict(opt.state_dict())
    for _ in range(4):
        grads = make_grads(rng, params)
        opt.step(grads)
        clone.step(grads)
    for a, b in zip(params, twins, strict=True):
        np.testing.assert_array_equal(a, b)


def test_switch_needs_the_same_arrays():
    with pytest.raises(ValueError, match="same arrays"):
        Switch(optim.Adam([np.zeros(2)]), optim.SGD([np.zeros(2)]), 3)
    with pytest.raises(TypeError, match="second"):
        Switch(optim.Adam([np.zeros(2)]), "sgd", 3)
    params = [np.zeros(2)]
    with pytest.raises(ValueError, match="at_step"):
        Switch(optim.Adam(params), optim.SGD(params), -1)
