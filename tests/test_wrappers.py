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


def test_lookahead_eval_puts_the_slow_weights_in_the_parameters(rng):
    params = [rng.standard_normal((4, 3)), rng.standard_normal(5).astype(np.float32)]
    start = [p.copy() for p in params]
    opt = Lookahead(optim.SGD(params, lr=0.1), k=3, alpha=0.5)
    for _ in range(4):  # one synchronization, then one fast step
        opt.step([rng.standard_normal(p.shape).astype(p.dtype) for p in params])
    fast = [p.copy() for p in params]
    slow = [s + 0.0 for s in opt.state_dict()["slow"]]
    assert opt.training and opt.eval() is opt and not opt.training
    np.testing.assert_array_equal(np.concatenate([params[0].ravel()]), slow[0])
    np.testing.assert_array_equal(params[1], slow[1])
    assert not np.array_equal(params[0], start[0])
    with pytest.raises(RuntimeError, match="eval mode"):
        opt.step([np.zeros_like(p) for p in params])
    saved = opt.state_dict()
    twins = [p.copy() for p in params]
    copy = Lookahead(optim.SGD(twins, lr=0.1), k=3, alpha=0.5)
    copy.load_state_dict(saved)
    assert not copy.training
    opt.train()
    copy.train()
    for p, f, t in zip(params, fast, twins, strict=True):
        np.testing.assert_array_equal(p, f)
        np.testing.assert_array_equal(t, f)
    with opt.evaluating():
        np.testing.assert_array_equal(params[1], slow[1])
    np.testing.assert_array_equal(params[1], fast[1])


def test_lookahead_eval_with_a_read_only_parameter_moves_nothing(rng):
    params = [rng.standard_normal(6), rng.standard_normal(4)]
    opt = Lookahead(optim.SGD(params, lr=0.1), k=3)
    for _ in range(4):  # the slow weights now differ from the fast ones
        opt.step([np.ones(6), np.ones(4)])
    before = [p.copy() for p in params]
    assert not np.array_equal(opt.state_dict()["slow"][0][:6], params[0])
    params[1].flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[1\] is read-only"):
        opt.eval()
    assert opt.training
    for p, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(p, b)


def test_switch_hands_the_schedule_free_average_to_the_second(rng):
    params = make_params(rng, np.float64)
    twins = [p.copy() for p in params]
    switch = Switch(optim.ScheduleFreeAdamW(params), optim.SGD(params, lr=1e-2), 3)
    first, second = optim.ScheduleFreeAdamW(twins), optim.SGD(twins, lr=1e-2)
    for step in range(1, 7):
        grads = make_grads(rng, params)
        if step == 4:
            first.eval()  # the second starts from the average x, not from y
        switch.step(grads)
        (first if step <= 3 else second).step(grads)
        for a, b in zip(params, twins, strict=True):
            np.testing.assert_array_equal(a, b)
    assert not switch.first.training and switch.training


def test_switch_forwards_train_and_eval_to_the_active_optimizer(rng):
    params = make_params(rng, np.float64)
    switch = Switch(optim.ScheduleFreeSGD(params), optim.Adam(params), 5)
    for _ in range(3):
        switch.step(make_grads(rng, params))
    training_point = [p.copy() for p in params]
    with switch.evaluating():
        assert not switch.training and not switch.first.training
        assert any(not np.array_equal(a, b) for a, b in zip(params, training_point, strict=True))
        with pytest.raises(RuntimeError, match="eval mode"):
            switch.step(make_grads(rng, params))
    assert switch.training
    for a, b in zip(params, training_point, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)  # y to x and back rounds
    assert switch.eval() is switch and switch.train() is switch
