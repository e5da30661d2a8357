"""Bad input raises TypeError/ValueError naming the argument, before any array is touched."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optim_helpers import make_grads, make_params

from optbench import optim, registry

INFOS = pytest.mark.parametrize("info", registry.specs(), ids=lambda info: info.name)


def options_of_type(info, kind):
    """Options whose default is of type ``kind``, those of every optimizer included."""
    defaults = {**info.defaults, "clip_value": None, "l1": 0.0, "max_norm": None}
    return [name for name, value in defaults.items() if type(value) is kind]


REAL_OPTIONS = [
    pytest.param(info, name, id=f"{info.name}-{name}")
    for info in registry.specs()
    for name in options_of_type(info, float)
]
FLAG_OPTIONS = [
    pytest.param(info, name, id=f"{info.name}-{name}")
    for info in registry.specs()
    for name in options_of_type(info, bool)
]


@pytest.mark.parametrize(("info", "name"), REAL_OPTIONS)
@pytest.mark.parametrize("value", ["outside", float("nan"), float("inf")])
def test_real_option_out_of_range(info, name, value):
    option = info.hyperparameter(name) if name in info.defaults else None
    if value == "outside":  # -1, or above the range of an option with no lower end
        value = -1.0 if option is None or math.isfinite(option.low) else option.high + 1.0
    if value == math.inf and getattr(option, "infinite", False):
        value = -math.inf  # Prodigy's growth_rate takes inf, not -inf
    with pytest.raises(ValueError, match=name):
        optim.make(info, [np.zeros(3)], **{name: value})


@pytest.mark.parametrize(("info", "name"), REAL_OPTIONS)
@pytest.mark.parametrize("value", ["0.1", None, True, [0.1]])
def test_real_option_wrong_type(info, name, value):
    with pytest.raises(TypeError, match=name):
        optim.make(info, [np.zeros(3)], **{name: value})


@pytest.mark.parametrize(("info", "name"), FLAG_OPTIONS)
@pytest.mark.parametrize("value", [1, "yes", None])
def test_flag_option_wrong_type(info, name, value):
    with pytest.raises(TypeError, match=name):
        optim.make(info, [np.zeros(3)], **{name: value})


@pytest.mark.parametrize(
    ("cls", "options", "error", "match"),
    [
        (optim.Adam, {"betas": (1.0, 0.9)}, ValueError, r"betas\[0\]"),
        (optim.Adam, {"betas": (0.9, -0.1)}, ValueError, r"betas\[1\]"),
        (optim.Adam, {"betas": (0.9,)}, TypeError, "betas"),
        (optim.AdamW, {"betas": 0.9}, TypeError, "betas"),
        (optim.SGD, {"nesterov": True}, ValueError, "nesterov"),
        (optim.SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, ValueError, "nesterov"),
        (optim.SGD, {"dampening": 1.5}, ValueError, "dampening"),
        (optim.RMSprop, {"alpha": 1.01}, ValueError, "alpha"),
        (optim.Adam, {"lr": np.float32(-1)}, ValueError, "lr"),
    ],
)
def test_specific_option_rules(cls, options, error, match):
    with pytest.raises(error, match=match):
        cls([np.zeros(3)], **options)


def test_numpy_scalars_are_accepted_as_options():
    opt = optim.Adam([np.zeros(3)], lr=np.float32(1e-3), amsgrad=np.bool_(True))
    opt.step([np.ones(3)])


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ([], ValueError, "params is empty"),
        (np.zeros(3), TypeError, "single ndarray"),
        (5, TypeError, "params must be"),
        ([np.zeros(3, np.int64)], TypeError, r"params\[0\] has dtype int64"),
        ([np.zeros(3, np.float16)], TypeError, r"params\[0\] has dtype float16"),
        ([[0.0, 1.0]], TypeError, r"params\[0\] must be a numpy.ndarray"),
        ([np.zeros((3, 4))[:, 1]], ValueError, r"params\[0\] is not C-contiguous"),
        ([np.zeros((3, 4)).T], ValueError, r"params\[0\] is not C-contiguous"),
        ([np.zeros(2), {"params": [np.zeros(2)]}], TypeError, "mixes"),
        ([{"params": [np.zeros(2)], "betas2": 0.9}], ValueError, "unknown options"),
        ([{"lr": 0.1}], ValueError, "no 'params'"),
        ([{"params": []}], ValueError, "is empty"),
    ],
)
def test_bad_params(params, error, match):
    with pytest.raises(error, match=match):
        optim.Adam(params)


def test_read_only_param():
    param = np.zeros(3)
    param.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\] is read-only"):
        optim.SGD([param])


def test_params_sharing_memory():
    base = np.zeros(10)
    with pytest.raises(ValueError, match=r"params\[1\] shares memory with params\[0\]"):
        optim.SGD([base, base])
    with pytest.raises(ValueError, match=r"params\[2\] shares memory with params\[1\]"):
        optim.SGD([np.zeros(1), base[2:6], base[5:]])
    optim.SGD([base[:5], base[5:]])


def snapshot(opt, params):
    state = opt.state_dict()["state"]
    arrays = [p.copy() for p in params]
    arrays += [np.asarray(v).copy() for entry in state.values() for v in entry.values()]
    return arrays


def assert_unchanged(opt, params, before):
    for a, b in zip(snapshot(opt, params), before, strict=True):
        np.testing.assert_array_equal(a, b)


CORRUPTIONS = ("dtype", "int_dtype", "shape", "strided", "transposed", "list", "none")


def corrupt(grads, index, kind):
    grads = list(grads)
    g = grads[index]
    if kind == "dtype":
        grads[index] = g.astype(np.float64 if g.dtype == np.float32 else np.float32)
        return grads, TypeError, rf"grads\[{index}\] has dtype"
    if kind == "int_dtype":
        grads[index] = g.astype(np.int32)
        return grads, TypeError, rf"grads\[{index}\] has dtype"
    if kind == "shape":
        grads[index] = np.zeros((*g.shape, 2), g.dtype)
        return grads, ValueError, rf"grads\[{index}\] has shape"
    if kind == "strided":
        grads[index] = np.zeros((*g.shape, 2), g.dtype)[..., 0]
        return grads, ValueError, rf"grads\[{index}\] is not C-contiguous"
    if kind == "transposed":
        grads[index] = np.zeros(g.shape[::-1], g.dtype).T
        return grads, ValueError, rf"grads\[{index}\] is not C-contiguous"
    if kind == "list":
        grads[index] = g.tolist()
        return grads, TypeError, rf"grads\[{index}\] must be a numpy.ndarray"
    grads[index] = None
    return grads, TypeError, rf"grads\[{index}\] must be a numpy.ndarray"


SHAPES = ((7, 5), (3, 4), (6,))


@INFOS
@settings(max_examples=25, deadline=None)
@given(
    index=st.integers(0, len(SHAPES) - 1),
    kind=st.sampled_from(CORRUPTIONS),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_bad_grads_raise_and_touch_nothing(info, index, kind, dtype, seed):
    rng = np.random.default_rng(seed)
    params = make_params(rng, dtype, SHAPES, spec=info)
    opt = optim.make(info, params, **info.variants[-1].options)
    opt.step(make_grads(rng, params))
    before = snapshot(opt, params)
    grads, error, match = corrupt(make_grads(rng, params), index, kind)
    if kind == "transposed" and grads[index].flags.c_contiguous:
        return  # a 1-D array transposed is still contiguous: nothing to reject
    with pytest.raises(error, match=match):
        opt.step(grads)
    assert_unchanged(opt, params, before)


@pytest.mark.parametrize("count", [0, 2, 4])
def test_wrong_number_of_grads(count, rng):
    params = make_params(rng, np.float32, SHAPES)
    opt = optim.Adam(params)
    before = snapshot(opt, params)
    grads = make_grads(rng, make_params(rng, np.float32, ((3,),) * count))
    with pytest.raises(ValueError, match=f"grads has {count} arrays but the optimizer has 3"):
        opt.step(grads)
    assert_unchanged(opt, params, before)


def test_grads_must_be_a_list(rng):
    params = make_params(rng, np.float32, SHAPES)
    with pytest.raises(TypeError, match="grads must be a list"):
        optim.Adam(params).step(g for g in make_grads(rng, params))


def test_param_made_read_only_after_construction(rng):
    params = make_params(rng, np.float32, SHAPES)
    opt = optim.Adam(params)
    params[2].flags.writeable = False
    before = snapshot(opt, params)
    with pytest.raises(ValueError, match=r"params\[2\] is read-only"):
        opt.step(make_grads(rng, params))
    assert_unchanged(opt, params, before)


@INFOS
def test_invalid_option_set_between_steps(info, rng):
    params = make_params(rng, np.float64, SHAPES, spec=info)
    opt = optim.make(info, [{"params": params[:1]}, {"params": params[1:]}])
    opt.step(make_grads(rng, params))
    before = snapshot(opt, params)
    opt.param_groups[1]["lr"] = -0.5
    with pytest.raises(ValueError, match=r"param_groups\[1\]: lr must be"):
        opt.step(make_grads(rng, params))
    assert_unchanged(opt, params, before)


def test_adabound_needs_a_positive_base_lr():
    with pytest.raises(ValueError, match="base_lr"):
        optim.AdaBound([np.zeros(3)], lr=0.0)
    with pytest.raises(ValueError, match="gamma"):
        optim.AdaBound([np.zeros(3)], gamma=1.0)


def test_nadam_load_rejects_mixed_mu_products(rng):
    params = make_params(rng, np.float64, SHAPES)
    opt = optim.NAdam(params)
    opt.step(make_grads(rng, params))
    saved = opt.state_dict()
    saved["state"][1]["mu_product"] = 0.5
    with pytest.raises(ValueError, match="mu_product"):
        opt.load_state_dict(saved)
