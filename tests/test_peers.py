"""The peers that the throughput tables compare against compute what the kernels compute."""

import numpy as np
import pytest
from optim_helpers import assert_close, make_params

from optbench import nn, optim, peers, registry
from optbench.reference import nn as reference_nn

NAMES = [info.name for info in registry.specs()]
# Muon's own update is NumPy in place: it has no other in-place version
IN_PLACE = [info.name for info in registry.specs() if info.inplace_peer is not None]


def _model(rng, dtype, info=None):
    return make_params(rng, dtype, ((7, 5), (33,), (1,)), spec=info)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", IN_PLACE)
def test_inplace_optimizer_matches_the_kernel(name, dtype, rng):
    """Ten steps at the registry defaults: the in-place NumPy version against the kernels
    (which match the reference, see test_optim_reference)."""
    info = registry.get(name)
    params = _model(rng, dtype, info)
    twins = [p.copy() for p in params]
    kernel = optim.make(info, params)
    inplace = peers.InplaceOptimizer(name, twins, peers.optimizer_options(kernel))
    for _ in range(10):
        grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
        kernel.step(grads)
        inplace.step(grads)
        for ours, theirs in zip(params, twins, strict=True):
            # float32: the in-place order of operations rounds differently, steps accumulate
            if dtype == np.float32:
                np.testing.assert_allclose(theirs, ours, rtol=2e-5, atol=2e-6)
            else:
                assert_close(theirs, ours, dtype, name)


@pytest.mark.parametrize("name", NAMES)
def test_reference_optimizer_matches_the_kernel(name, rng):
    info = registry.get(name)
    params = _model(rng, np.float64, info)
    twins = [p.copy() for p in params]
    kernel = optim.make(info, params)
    reference = peers.ReferenceOptimizer(info, twins, peers.optimizer_options(kernel))
    for _ in range(5):
        grads = [rng.standard_normal(p.shape) for p in params]
        kernel.step(grads)
        reference.step(grads)
    for ours, theirs in zip(params, twins, strict=True):
        assert_close(theirs, ours, np.float64, name)


def test_inplace_optimizer_refuses_options_it_does_not_implement(rng):
    params = _model(rng, np.float64)
    options = peers.optimizer_options(optim.make("adam", params, amsgrad=True))
    with pytest.raises(ValueError, match="amsgrad"):
        peers.InplaceOptimizer("adam", params, options)
    options = peers.optimizer_options(optim.make("sgd", params, clip_value=1.0))
    with pytest.raises(ValueError, match="clip_value"):
        peers.InplaceOptimizer("sgd", params, options)


def test_inplace_optimizer_allocates_no_array_per_step(rng):
    """The state and scratch buffers are allocated once: stepping keeps the same objects."""
    params = _model(rng, np.float32)
    options = peers.optimizer_options(optim.make("nadam", params))
    inplace = peers.InplaceOptimizer("nadam", params, options)
    grads = [np.ones_like(p) for p in params]
    inplace.step(grads)
    buffers = [id(a) for state in inplace.states for a in state.values() if hasattr(a, "shape")]
    scratch = [id(b) for b in inplace.scratch]
    inplace.step(grads)
    assert buffers == [
        id(a) for state in inplace.states for a in state.values() if hasattr(a, "shape")
    ]
    assert scratch == [id(b) for b in inplace.scratch]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", peers.NORMS)
def test_inplace_norm_matches_the_reference(name, dtype, rng):
    x = (2.0 * rng.standard_normal((12, 10)) + 0.5).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    norm = peers.norm_call("numpy in-place", name, x, dy)
    norm()
    weight = np.ones(10, dtype)
    if name == "layer_norm":
        y = reference_nn.layer_norm(x, (10,), weight, np.zeros(10))
        dx, dweight, dbias = reference_nn.layer_norm_backward(dy, x, (10,), weight)
    elif name == "batch_norm":
        y, *_ = reference_nn.batch_norm(x, None, None, weight, np.zeros(10), True)
        dx, dweight, dbias = reference_nn.batch_norm_backward(dy, x, weight, True)
    else:
        y = reference_nn.rms_norm(x, (10,), weight)
        dx, dweight = reference_nn.rms_norm_backward(dy, x, (10,), weight)
        dbias = None
    tolerance = {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-10}
    np.testing.assert_allclose(norm.y, y, **tolerance)
    np.testing.assert_allclose(norm.dx, dx, **tolerance)
    np.testing.assert_allclose(norm.dweight, dweight, **tolerance)
    if dbias is not None:
        np.testing.assert_allclose(norm.dbias, dbias, **tolerance)


def test_inplace_batch_norm_updates_running_statistics(rng):
    x = rng.standard_normal((16, 4))
    norm = peers.InplaceNorm(
        "batch_norm", x, x, np.ones(4), np.zeros(4), (np.zeros(4), np.ones(4)), momentum=0.5
    )
    norm.forward()
    running_mean, running_var = norm.running
    np.testing.assert_allclose(running_mean, 0.5 * x.mean(axis=0))
    np.testing.assert_allclose(running_var, 0.5 + 0.5 * x.var(axis=0, ddof=1))


@pytest.mark.parametrize("name", peers.NORMS)
def test_norm_calls_run_every_available_implementation(name, rng):
    x = rng.standard_normal((8, 16)).astype(np.float32)
    for implementation in ("optbench", "numpy reference", "numpy in-place"):
        call = peers.norm_call(implementation, name, x, x)
        call()
    assert peers.norm_call("torch", name, x, x, torch=None) is None
    with pytest.raises(ValueError, match="implementation"):
        peers.norm_call("jax", name, x, x)
    with pytest.raises(ValueError, match="name"):
        peers.norm_call("optbench", "group_norm", x, x)


def test_torch_peers_compute_what_the_kernels_compute(rng):
    torch = pytest.importorskip("torch")
    info = registry.get("adam")
    params = _model(rng, np.float64)
    ours = [p.copy() for p in params]
    kernel = optim.make(info, ours)
    grads = [rng.standard_normal(p.shape) for p in params]
    kernel.step(grads)  # torch's optimizer takes its first step when built
    for implementation in peers.TORCH_IMPLEMENTATIONS:
        theirs = [p.copy() for p in params]
        optimizer = peers.torch_optimizer(
            torch, info, theirs, grads, peers.optimizer_options(kernel), implementation
        )
        if optimizer is None:
            continue
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
    assert peers.torch_optimizer(torch, registry.get("lion"), params, grads, {}, "foreach") is None


@pytest.mark.parametrize("name", peers.NORMS)
def test_torch_norm_matches_optbench(name, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((6, 16))
    dy = rng.standard_normal(x.shape)
    call = peers.norm_call("torch", name, x, dy, torch=torch)
    result = call()
    if name == "rms_norm":
        dx, dweight = result
        _, ctx = nn.rms_norm(x, 16, np.ones(16))
        expected_dx, expected_dweight = nn.rms_norm_backward(dy, ctx)
        np.testing.assert_allclose(dx.numpy(), expected_dx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dweight.numpy(), expected_dweight, rtol=1e-10, atol=1e-12)
