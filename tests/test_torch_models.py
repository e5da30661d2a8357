"""The torch versions of optbench's networks: the same loss and gradients as the problems (in
float64), the same parameters after a few Adam steps, and what has no torch version refused
by name."""

import numpy as np
import pytest

from optbench import problems
from optbench.torch_models import TRAINING_PROBLEMS, torch_network, training_steps

torch = pytest.importorskip("torch")

SMALL_TRANSFORMER = {"modulus": 11, "d_model": 8, "heads": 2, "d_mlp": 12}
CASES = [
    ("digits_mlp", {}),
    ("digits_mlp", {"norm": "layer", "l1": 0.01, "l2": 0.1, "activation": "sigmoid"}),
    ("digits_mlp", {"norm": "batch", "activation": "elu", "init": "glorot"}),
    ("digits_mlp", {"activation": "leaky_relu", "hidden": "16,8"}),
    ("deep_sigmoid_mlp", {"depth": 3, "width": 8}),
    ("mnist1d_mlp", {"hidden": "20", "activation": "tanh"}),
    ("mnist1d_cnn", {"channels": 4, "l2": 0.1}),
    ("modular_addition", SMALL_TRANSFORMER),
    ("modular_addition", {**SMALL_TRANSFORMER, "layers": 2, "heads": 4, "l2": 0.1}),
]


def _perturbed(problem):
    rng = np.random.default_rng(1)
    return [p + 0.1 * rng.standard_normal(p.shape) for p in problem.initial_params()]


@pytest.mark.parametrize(("name", "options"), CASES)
def test_loss_and_gradients_match_the_problem(name, options):
    problem = problems.make(name, seed=2, dtype="float64", **options)
    params = _perturbed(problem)
    batch = next(iter(problem.batches(16, np.random.default_rng(0))))
    loss, grads = problem.loss_and_grad(params, batch)
    network = torch_network(problem, params)
    theirs = network.loss(torch.from_numpy(batch.x), torch.from_numpy(batch.targets))
    theirs.backward()
    assert abs(loss - theirs.item()) <= 1e-12 * max(1.0, abs(loss))
    for i, (ours, tensor) in enumerate(zip(grads, network.parameters, strict=True)):
        scale = max(np.abs(ours).max(), 1.0)
        np.testing.assert_allclose(
            ours, tensor.grad.numpy(), rtol=0, atol=1e-12 * scale, err_msg=f"params[{i}]"
        )


@pytest.mark.parametrize("name", TRAINING_PROBLEMS)
def test_a_few_adam_steps_give_the_same_parameters(name):
    options = {"modular_addition": SMALL_TRANSFORMER, "mnist1d_cnn": {"channels": 4}}
    problem = problems.make(name, dtype="float64", **options.get(name, {}))
    steps = training_steps(problem, 8)
    for _ in range(4):  # the first step was taken when the steps were built
        steps["optbench"]()
        steps["torch"]()
    ours, theirs = steps["optbench"].params, steps["torch"].params
    start = problem.initial_params()
    for i, (a, b, p0) in enumerate(zip(ours, theirs, start, strict=True)):
        assert not np.array_equal(a, p0), f"params[{i}] did not move"
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=0, atol=1e-10, err_msg=f"[{i}]")


def test_what_has_no_torch_version_is_refused_by_name():
    with pytest.raises(ValueError, match=r"dropout=0\.5"):
        torch_network(problems.make("digits_mlp", dropout=0.5), [])
    with pytest.raises(TypeError, match="xor_mlp has no torch version"):
        torch_network(problems.make("xor_mlp"), [])
    with pytest.raises(TypeError, match="quadratic has no torch version"):
        torch_network(problems.make("quadratic"), [])
    problem = problems.make("digits_mlp")
    with pytest.raises(ValueError, match="params holds 1 arrays; digits_mlp has 6"):
        torch_network(problem, problem.initial_params()[:1])
    with pytest.raises(ValueError, match="'jax' is not optbench or torch"):
        training_steps(problem, 8, implementations=("jax",))
