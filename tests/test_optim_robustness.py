"""Optimizer objects under adversarial use: copies and pickles, edits of ``param_groups``,
tampered state dicts and aliasing gradients. Each case either works exactly as the same steps
on a fresh optimizer would, or is refused before anything changes."""

import copy
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from optim_helpers import make_grads, make_params

from optbench import optim, registry

SHAPES = ((4, 3), (5,), (2, 2))


def snapshot(opt, params):
    state = opt.state_dict()
    arrays = [p.copy() for p in params]
    arrays += [np.asarray(v).copy() for entry in state["state"].values() for v in entry.values()]
    return arrays, repr(state["param_groups"]), state["skipped_steps"]


def assert_unchanged(opt, params, before):
    after = snapshot(opt, params)
    for a, b in zip(before[0], after[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert before[1:] == after[1:]


def stepped(name, rng, steps=3, **options):
    params = make_params(rng, np.float64, SHAPES, spec=registry.get(name))
    opt = optim.make(name, params, **options)
    for _ in range(steps):
        opt.step(make_grads(rng, params))
    return opt, params


# --------------------------------------------------------------------------------------------
# copies and pickles
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", registry.names())
def test_deepcopy_steps_its_own_arrays_exactly_as_the_original(name, rng):
    opt, params = stepped(name, rng)
    before = [p.copy() for p in params]
    clone = copy.deepcopy(opt)
    grads = make_grads(rng, params)
    clone.step(grads)
    for p, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(p, b)  # the original's arrays are untouched
    opt.step(grads)
    for mine, theirs in zip(params, clone.params, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert all(a is not b for a, b in zip(params, clone.params, strict=True))


def test_pickle_round_trip_in_process_keeps_shared_arrays_shared(rng):
    opt, params = stepped("nadam", rng)
    model = {"params": params, "optimizer": opt}
    restored = pickle.loads(pickle.dumps(model))
    assert all(
        a is b for a, b in zip(restored["params"], restored["optimizer"].params, strict=True)
    )
    grads = make_grads(rng, params)
    opt.step(grads)
    restored["optimizer"].step(grads)
    for a, b in zip(params, restored["params"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_pickled_optimizer_steps_in_a_new_process(tmp_path, rng):
    opt, params = stepped("adam", rng, amsgrad=True)
    grads = [np.ones_like(p) for p in params]
    (tmp_path / "opt.pkl").write_bytes(pickle.dumps(opt))
    opt.step(grads)
    script = (
        "import pickle, sys, numpy as np\n"
        "opt = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "opt.step([np.ones_like(p) for p in opt.params])\n"
        "np.save(sys.argv[2], np.concatenate([p.ravel() for p in opt.params]))\n"
    )
    out = tmp_path / "params.npy"
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "opt.pkl"), str(out)], check=True)
    np.testing.assert_array_equal(np.load(out), np.concatenate([p.ravel() for p in params]))


# --------------------------------------------------------------------------------------------
# param_groups
# --------------------------------------------------------------------------------------------
def two_groups(rng, name="adam"):
    params = make_params(rng, np.float64, SHAPES)
    spec = registry.get(name)
    opt = optim.make(spec, [{"params": params[:2]}, {"params": params[2:], "lr": 10 * spec.lr}])
    opt.step(make_grads(rng, params))
    return opt, params


def fresh_twin(opt):
    """An optimizer over copies of ``opt``'s arrays and groups, with its state."""
    twin = copy.deepcopy(opt)
    return twin, list(twin.params)


def test_deleting_a_group_steps_the_rest_with_their_state(rng):
    opt, params = two_groups(rng)
    kept = params[2:]
    expected = optim.make("adam", [p.copy() for p in kept], lr=opt.param_groups[1]["lr"])
    state = opt.state_dict()
    expected.load_state_dict(
        {
            "state": {i: state["state"][i + 2] for i in range(len(kept))},
            "param_groups": [{**state["param_groups"][1], "params": list(range(len(kept)))}],
        }
    )
    del opt.param_groups[0]
    grads = make_grads(rng, kept)
    opt.step(grads)
    expected.step(grads)
    for a, b in zip(kept, expected.params, strict=True):
        np.testing.assert_array_equal(a, b)
    saved = opt.state_dict()
    assert list(saved["state"]) == [0] and saved["state"][0]["step"] == 2


def test_reversed_groups_keep_their_own_options(rng):
    opt, params = two_groups(rng)
    twin, twin_params = fresh_twin(opt)
    opt.param_groups.reverse()
    grads = make_grads(rng, params)
    opt.step([*grads[2:], *grads[:2]])  # grads follow the new order of the arrays
    twin.step(grads)
    for a, b in zip(params, twin_params, strict=True):
        np.testing.assert_array_equal(a, b)


def test_replaced_params_are_stepped_and_new_arrays_start_afresh(rng):
    opt, params = two_groups(rng, "sgd")
    new = np.zeros(3)
    opt.param_groups[1]["params"] = [params[2], new]
    grads = [*make_grads(rng, params), np.ones(3)]
    opt.step(grads)
    lr = opt.param_groups[1]["lr"]
    np.testing.assert_array_equal(new, -lr * np.ones(3))
    state = opt.state_dict()["state"]
    assert [state[i]["step"] for i in range(4)] == [2, 2, 2, 1]


def test_params_cannot_be_appended_to_in_place(rng):
    opt, _ = two_groups(rng)
    with pytest.raises(AttributeError):
        opt.param_groups[0]["params"].append(np.zeros(2))


def test_add_param_group_fills_defaults_and_starts_afresh(rng):
    opt, params = two_groups(rng)
    extra = np.zeros(4)
    opt.add_param_group({"params": [extra], "betas": (0.5, 0.9)})
    assert opt.param_groups[2]["lr"] == opt.defaults["lr"]
    opt.step([*make_grads(rng, params), np.ones(4)])
    assert opt.state_dict()["state"][3]["step"] == 1
    with pytest.raises(ValueError, match="shares memory"):
        opt.add_param_group({"params": [extra]})
    assert len(opt.param_groups) == 3


def test_appended_partial_group_is_refused_clearly(rng):
    opt, params = two_groups(rng)
    before = snapshot(opt, params)
    opt.param_groups.append({"params": [np.zeros(2)], "lr": 0.1})
    with pytest.raises(ValueError, match=r"param_groups\[2\] lacks options .*add_param_group"):
        opt.step([*make_grads(rng, params), np.ones(2)])
    del opt.param_groups[2]
    assert_unchanged(opt, params, before)


# --------------------------------------------------------------------------------------------
# load_state_dict: everything checked first
# --------------------------------------------------------------------------------------------
def tampered(opt, change):
    saved = copy.deepcopy(opt.state_dict())
    change(saved)
    return saved


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda s: s["state"][2].update(exp_avg=np.zeros(7)), ValueError, r"state\[2\]"),
        (lambda s: s["state"][0].update(step=2**64), ValueError, "step"),
        (lambda s: s["state"][0].update(step=-1), ValueError, "step"),
        (lambda s: s["state"][0].update(step=1.5), TypeError, "step"),
        (lambda s: s.update(skipped_steps=-1), ValueError, "skipped_steps"),
        (lambda s: s.update(skipped_steps=0.5), TypeError, "skipped_steps"),
        (lambda s: s["state"][1].update(exp_avg=np.array(["a"] * 5)), TypeError, "exp_avg"),
        (lambda s: s["state"].update({3: {"step": 1}}), ValueError, "keys"),
        (lambda s: s["param_groups"][0].update(params=[1, 0]), ValueError, "params"),
        (lambda s: s["param_groups"][0].update(lr=-1.0), ValueError, "lr"),
    ],
)
def test_refused_state_dict_changes_nothing(rng, change, error, match):
    """A new lr comes first in the saved dict, the fault later: the lr is not applied."""
    opt, params = stepped("adam", rng)
    saved = tampered(opt, lambda s: s["param_groups"][0].update(lr=0.5))
    change(saved)
    before = snapshot(opt, params)
    with pytest.raises(error, match=match):
        opt.load_state_dict(saved)
    assert_unchanged(opt, params, before)


def test_json_round_tripped_state_dict_is_refused(rng):
    opt, params = stepped("sgd", rng, momentum=0.9)
    before = snapshot(opt, params)
    state = opt.state_dict()
    text = json.dumps(state, default=lambda a: a.tolist() if isinstance(a, np.ndarray) else a)
    with pytest.raises(ValueError, match="JSON round trip"):
        opt.load_state_dict(json.loads(text))
    assert_unchanged(opt, params, before)


def test_tampered_group_scalar_is_refused(rng):
    opt, params = stepped("nadam", rng)
    for value in (float("nan"), -0.5, 2.0):
        saved = tampered(
            opt, lambda s, v=value: [e.update(mu_product=v) for e in s["state"].values()]
        )
        before = snapshot(opt, params)
        with pytest.raises(ValueError, match="mu_product"):
            opt.load_state_dict(saved)
        assert_unchanged(opt, params, before)


# --------------------------------------------------------------------------------------------
# aliasing
# --------------------------------------------------------------------------------------------
def test_gradients_aliasing_parameters_are_refused(rng):
    params = [np.full(3, 1.0), np.full(3, 10.0)]
    opt = optim.SGD(params, lr=1.0)
    before = snapshot(opt, params)
    with pytest.raises(ValueError, match=r"grads\[0\] shares memory with params\[1\]"):
        opt.step([params[1], params[0]])
    with pytest.raises(ValueError, match=r"grads\[1\] shares memory with params\[0\]"):
        opt.step([np.ones(3), params[0]])
    assert_unchanged(opt, params, before)
    base = np.zeros(8)
    opt = optim.SGD([base[:4]], lr=1.0)
    opt.step([base[2:6].copy()])
    with pytest.raises(ValueError, match="shares memory"):
        opt.step([base[2:6]])
    opt.step([base[4:]])  # memory next to, not inside, the parameter
