"""torch.optim classes as unfused optbench optimizers: declared from the class, compared in
runs, saved and resumed like any optimizer, refused clearly where optbench cannot hold their
state."""

import pickle

import numpy as np
import pandas as pd
import pytest

from optbench import cli, optim, registry, runner, sweep, testing

torch = pytest.importorskip("torch")
from optbench import torch_optimizers  # noqa: E402


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """torch specs register themselves when resolved: keep them out of the other tests."""
    monkeypatch.setattr(registry, "_registered", {})


def test_the_spec_is_declared_from_the_class():
    spec = registry.get("torch.optim.Adam")
    assert spec is registry.get("torch_adam") is torch_optimizers.torch_spec(torch.optim.Adam)
    assert (spec.name, spec.class_name, spec.fused) == ("torch_adam", "TorchAdam", False)
    assert spec.label == "torch_adam (unfused)"
    assert {s.name: s.used_when for s in spec.state} == {
        "exp_avg": None,
        "exp_avg_sq": None,
        "max_exp_avg_sq": "amsgrad",
    }
    assert spec.defaults["lr"] == 1e-3 and spec.defaults["betas"] == (0.9, 0.999)
    assert "foreach" not in spec.defaults and "fused" not in spec.defaults
    sgd = registry.get("torch.optim.SGD")
    assert {s.name: s.used_when for s in sgd.state} == {"momentum_buffer": "momentum"}


@pytest.mark.parametrize("name", ["torch.optim.Adam", "torch.optim.SGD", "torch.optim.Rprop"])
def test_torch_specs_pass_the_conformance_suite(name):
    testing.check_optimizer(registry.get(name))


@pytest.mark.parametrize(
    ("theirs", "ours", "options"),
    [
        ("torch.optim.Adam", "adam", {"amsgrad": True, "weight_decay": 0.1}),
        ("torch.optim.SGD", "sgd", {"momentum": 0.9, "nesterov": True}),
        ("torch.optim.RMSprop", "rmsprop", {"centered": True, "momentum": 0.5}),
        ("torch.optim.Adagrad", "adagrad", {"lr_decay": 0.01}),
    ],
)
def test_a_run_with_the_torch_class_follows_optbench_s_kernel(theirs, ours, options):
    common = {"lr": 1e-2, "steps": 40, "optimizer_options": options}
    torch_run = runner.run(theirs, "quadratic", **common)
    our_run = runner.run(ours, "quadratic", **common)
    assert set(torch_run["optimizer"]) == {registry.get(theirs).name}
    np.testing.assert_allclose(torch_run["train_loss"], our_run["train_loss"], rtol=1e-9)


def test_state_dict_and_pickle_resume_bit_for_bit(rng):
    spec = registry.get("torch.optim.Adam")
    params = [rng.standard_normal((4, 3)), rng.standard_normal(5)]
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(6)]
    straight = optim.make(spec, [p.copy() for p in params], amsgrad=True)
    for g in grads:
        straight.step(g)
    first = optim.make(spec, [p.copy() for p in params], amsgrad=True)
    for g in grads[:3]:
        first.step(g)
    resumed = pickle.loads(pickle.dumps(first))
    loaded = optim.make(spec, [p.copy() for p in first.params], amsgrad=True)
    loaded.load_state_dict(first.state_dict())
    for g in grads[3:]:
        resumed.step(g)
        loaded.step(g)
    for a, b, c in zip(straight.params, resumed.params, loaded.params, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_what_optbench_cannot_hold_is_refused_naming_it():
    with pytest.raises(ValueError, match="keeps 'mu_product' per parameter"):
        registry.get("torch.optim.NAdam")
    with pytest.raises(ValueError, match="no float 'maximize' option"):
        registry.get("torch.optim.LBFGS")
    with pytest.raises(ValueError, match="no optimizer class 'Nothing'"):
        registry.get("torch.optim.Nothing")
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.make(registry.get("torch.optim.Adam"), [np.zeros(2)], lr=-1.0)


def test_the_command_line_and_a_sweep_take_torch_classes(tmp_path, capsys):
    out = tmp_path / "run.csv"
    argv = ["run", "--problem", "quadratic", "--optimizer", "torch.optim.AdamW", "--steps", "10"]
    assert cli.main([*argv, "--opt", "amsgrad=true", "--out", str(out)]) == 0
    assert set(pd.read_csv(out)["optimizer"]) == {"torch_adamw"}
    grid = sweep.Grid(
        problems=["quadratic"], optimizers=["torch.optim.SGD", "sgd"], lrs=[0.05], steps=20
    )
    table = sweep.sweep(grid, jobs=2, progress=False)
    final = table[table["step"] == 20].set_index("optimizer")["train_loss"]
    assert final["torch_sgd"] == pytest.approx(final["sgd"], rel=1e-12)
