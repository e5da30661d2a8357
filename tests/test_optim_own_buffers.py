"""State buffers not of the parameter's shape (``State.shape``; Adafactor's factored moments):
kept per array, listed in the state dict with their own shapes, validated on load, kept across
re-layouts, and never stored as parameter-sized rows."""

import dataclasses

import numpy as np
import pytest
from optim_helpers import make_grads, make_params

from optbench import algorithms, optim
from optbench.spec import SpecError, State

SHAPES = ((6, 4), (2, 3, 5), (7,), ())


def stepped(rng, steps=3, **options):
    params = make_params(rng, np.float64, SHAPES)
    opt = optim.Adafactor(params, **options)
    for _ in range(steps):
        opt.step(make_grads(rng, params))
    return opt, params


def test_factored_arrays_keep_rows_and_columns_only(rng):
    opt, _ = stepped(rng)
    state = opt.state_dict()["state"]
    assert state[0]["row_var"].shape == (6, 1) and state[0]["col_var"].shape == (1, 4)
    assert state[1]["row_var"].shape == (2, 3, 1) and state[1]["col_var"].shape == (2, 1, 5)
    assert set(state[0]) == set(state[1]) == {"step", "row_var", "col_var"}
    assert set(state[2]) == set(state[3]) == {"step", "variance"}
    assert state[3]["variance"].shape == ()
    # no parameter-sized rows: the optimizer holds R + C numbers per matrix
    assert all(bucket.state.shape[0] == 0 for bucket in opt._buckets)


def test_state_dict_round_trip_steps_identically(rng):
    opt, params = stepped(rng)
    twins = [p.copy() for p in params]
    twin = optim.Adafactor(twins)
    twin.load_state_dict(opt.state_dict())
    for _ in range(3):
        grads = make_grads(rng, params)
        opt.step(grads)
        twin.step([g.copy() for g in grads])
    for a, b in zip(params, twins, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda s: s["state"][0].__setitem__("row_var", np.zeros((1, 4))), r"\(6, 1\)"),
        (lambda s: s["state"][0].__setitem__("variance", np.zeros((6, 4))), "does not keep"),
        (lambda s: s["state"][2].__setitem__("row_var", np.zeros((7, 1))), "does not keep"),
        (lambda s: s["state"][2].__setitem__("variance", np.zeros(6)), "has shape"),
    ],
)
def test_misshapen_saved_buffers_are_refused_before_anything_changes(rng, change, match):
    opt, _ = stepped(rng)
    before = opt.state_dict()
    saved = opt.state_dict()
    change(saved)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(saved)
    after = opt.state_dict()
    for index, entry in before["state"].items():
        for name, value in entry.items():
            np.testing.assert_array_equal(after["state"][index][name], value)


def test_a_new_group_keeps_the_others_buffers(rng):
    opt, _ = stepped(rng)
    before = opt.state_dict()["state"]
    extra = np.ones((3, 2))
    opt.add_param_group({"params": [extra]})
    state = opt.state_dict()["state"]
    for index, entry in before.items():
        for name, value in entry.items():
            np.testing.assert_array_equal(state[index][name], value)
    assert state[4]["step"] == 0 and not state[4]["row_var"].any()


def test_a_refused_step_leaves_the_buffers_as_they_were(rng):
    opt, params = stepped(rng)
    before = opt.state_dict()["state"]
    grads = make_grads(rng, params)
    grads[1] = grads[1].astype(np.float32)
    with pytest.raises(TypeError, match=r"grads\[1\]"):
        opt.step(grads)
    for index, entry in before.items():
        for name, value in entry.items():
            np.testing.assert_array_equal(opt.state_dict()["state"][index][name], value)


def test_a_fused_spec_cannot_declare_a_shaped_buffer():
    shaped = State("small", shape=lambda shape: (1,))
    with pytest.raises(SpecError, match="only an unfused spec"):
        dataclasses.replace(algorithms.ADAM, name="adam_small", state=(shaped,))
