"""The asv suite: asv accepts it, it follows the registries, and every benchmark runs.

The in-process tests call each benchmark class the way asv_runner does (``setup`` then the
benchmark method) on its smallest grid point; the CI check (``.ci/bench-smoke``) runs on a few
benchmarks and on broken suites, and the slow ``test_bench_smoke_runs_everything`` runs all of
it.
"""

import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from optbench import nn, optim, peers, registry
from optbench.problems import PROBLEMS

try:
    import torch
except ImportError:
    torch = None

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# the suite pins thread counts (os.environ, BLAS, torch) when imported; the other tests and
# their subprocesses must not inherit that
_PINNED = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_saved = {name: os.environ.get(name) for name in _PINNED}
_torch_threads = torch.get_num_threads() if torch else None
with threadpool_limits(limits=None):  # restores the BLAS threads on exit
    from benchmarks import common, convergence, normalization, optimizers, problems, startup
if torch:
    torch.set_num_threads(_torch_threads)

for _name, _value in _saved.items():
    if _value is None:
        os.environ.pop(_name, None)
    else:
        os.environ[_name] = _value


def _asv(*args, env=None, cwd=ROOT, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "asv", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def asv_home(tmp_path, monkeypatch):
    """A home directory of its own, for asv's machine file."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


# --------------------------------------------------------------------------------------------
# asv's view of the suite
# --------------------------------------------------------------------------------------------
def test_asv_check_passes():
    result = _asv("check", "--config", "asv.conf.json", "-E", f"existing:{sys.executable}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No problems found" in result.stdout


def test_asv_conf_paths():
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    assert conf["results_dir"] == ".asv/results"
    assert conf["html_dir"] == "reports/asv"
    assert conf["benchmark_dir"] == "benchmarks"
    assert (ROOT / conf["benchmark_dir"] / "__init__.py").exists()


def test_asv_output_is_ignored_by_git():
    """The published site (reports/asv) and the results (.asv) are generated: git ignores
    them, and still tracks the committed example report."""
    paths = ["reports/asv/index.html", ".asv/results/benchmarks.json", "reports/example/x.png"]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.split() == paths[:2]


# --------------------------------------------------------------------------------------------
# the grids follow the registries
# --------------------------------------------------------------------------------------------
def test_grids_cover_the_registries():
    names = list(registry.names())
    for cls in (optimizers.OptimizerStep, optimizers.ReferenceStep, optimizers.Bandwidth):
        assert cls.params[0] == names
        assert cls.params[2] == ["float32", "float64"]
        assert cls.params[3] == [1, 100]
    assert optimizers.TorchStep.params[-1] == ["foreach", "fused"]
    assert problems.TrainingStep.params == (list(PROBLEMS), [1, 32, 128, 1024, "full"])
    # the problems hold vectors: an optimizer of matrices only (Muon) trains none of them
    trains = [name for name in names if registry.get(name).ndims is None]
    assert convergence.Convergence.params == (trains, list(PROBLEMS))
    classifiers = [name for name, cls in PROBLEMS.items() if cls.classifier]
    assert convergence.Accuracy.params == (trains, classifiers)
    assert set(startup.TARGETS) >= {f"optimizer:{name}" for name in names} or common.SMOKE
    if not common.SMOKE:
        assert optimizers.OptimizerStep.params[1] == [10_000, 1_000_000, 10_000_000]


def test_a_spec_it_has_never_seen_joins_every_grid(monkeypatch):
    import dataclasses
    import importlib

    from optbench import algorithms

    spec = dataclasses.replace(algorithms.ADAM, name="adam_grid", class_name="AdamGrid")
    monkeypatch.setattr(registry, "_registered", {})
    registry.register(spec)
    try:
        for module in (optimizers, convergence, startup):
            importlib.reload(module)
        assert "adam_grid" in optimizers.OptimizerStep.params[0]
        assert "adam_grid" in convergence.Convergence.params[0]
        assert "optimizer:adam_grid" in startup.TARGETS or common.SMOKE
        grid = ("adam_grid", 10_000, "float32", 100)
        _run(optimizers.OptimizerStep, "time_steps", *grid)
        assert 0 < _run(optimizers.Bandwidth, "track_stream_fraction", *grid) < 100
    finally:
        monkeypatch.undo()
        for module in (optimizers, convergence, startup):
            importlib.reload(module)
    assert "adam_grid" not in optimizers.OptimizerStep.params[0]


def test_steps_per_call_depends_on_the_parameters_only():
    assert common.steps_per_call(10_000) == 10_000_000 // 20_000
    assert common.steps_per_call(10_000, 100) == 10_000_000 // (10_000 + 100 * 10_000)
    assert common.steps_per_call(10_000_000, 100) == 1
    assert common.steps_per_call(0) == 1000
    assert problems.steps_per_call(1) == problems.MAX_STEPS_PER_CALL
    assert problems.steps_per_call(1347) == max(1, problems.EXAMPLES_PER_CALL // 1347)


def test_model_is_seeded_and_split_evenly():
    params, grads = common.model(1001, 100, "float32", seed=3)
    again, _ = common.model(1001, 100, "float32", seed=3)
    assert len(params) == len(grads) == 100
    assert sum(p.size for p in params) == 1001
    assert {p.size for p in params} == {10, 11}
    assert all(p.dtype == np.float32 for p in params + grads)
    assert all(np.array_equal(a, b) for a, b in zip(params, again, strict=True))
    assert not any(np.shares_memory(a, b) for a, b in zip(params, again, strict=True))


def test_bytes_per_step_counts_state():
    assert optimizers.state_arrays("sgd") == 0
    assert optimizers.state_arrays("adam") == 2
    assert optimizers.bytes_per_step("adam", 1000, "float32") == 7 * 1000 * 4
    assert optimizers.bytes_per_step("sgd", 10, "float64") == 3 * 10 * 8


# --------------------------------------------------------------------------------------------
# every benchmark runs (in this process, smallest grid point)
# --------------------------------------------------------------------------------------------
def _run(cls, method, *params):
    benchmark = cls()
    benchmark.setup(*params)
    return getattr(benchmark, method)(*params)


@pytest.mark.parametrize("name", list(registry.names()))
def test_optimizer_benchmarks_run(name):
    for dtype in common.DTYPES:
        grid = (name, 10_000, dtype, 100)
        _run(optimizers.OptimizerStep, "time_steps", *grid)
        _run(optimizers.OptimizerStep, "peakmem_step", *grid)
        _run(optimizers.ReferenceStep, "time_steps", *grid)
        fraction = _run(optimizers.Bandwidth, "track_stream_fraction", *grid)
        assert 0 < fraction < 100 and math.isfinite(fraction)


def test_kernel_and_reference_step_agree():
    """The benchmarked reference is the oracle: 3 steps of both agree (same seeded model)."""
    for name in ("adam", "sgd"):
        params, grads = common.model(1000, 3, "float64", seed=5)
        oracle = [p.copy() for p in params]
        kernel = optim.make(name, params)
        reference = peers.ReferenceOptimizer(name, oracle, optimizers.options(name))
        for _ in range(3):
            kernel.step(grads)
            reference.step(grads)
        for a, b in zip(params, oracle, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10)


def test_torch_peers_run_or_skip():
    if common.torch is None:
        with pytest.raises(NotImplementedError):
            _run(optimizers.TorchStep, "time_steps", "adam", 10_000, "float32", 1, "foreach")
        return
    _run(optimizers.TorchStep, "time_steps", "adam", 10_000, "float32", 1, "foreach")
    _run(optimizers.TorchStep, "time_steps", "adam", 10_000, "float64", 100, "fused")
    with pytest.raises(NotImplementedError, match="no foreach peer of lion"):
        _run(optimizers.TorchStep, "time_steps", "lion", 10_000, "float32", 1, "foreach")
    with pytest.raises(NotImplementedError, match="fused"):
        _run(optimizers.TorchStep, "time_steps", "rmsprop", 10_000, "float32", 1, "fused")


@pytest.mark.parametrize("layer", list(normalization.LAYERS))
def test_normalization_benchmarks_run(layer):
    grid = (layer, normalization.SHAPE_NAMES[0], "float32")
    classes = [normalization.Normalization, normalization.ReferenceNormalization]
    if common.torch is not None:
        classes.append(normalization.TorchNormalization)
    for cls in classes:
        _run(cls, "time_forward", *grid)
        _run(cls, "time_backward", *grid)


def test_normalization_peers_compute_the_same_layer():
    x, dy, parameters = normalization.inputs("layer_norm", "64x256", "float64")
    layer = normalization.LAYERS["layer_norm"]
    y, ctx = layer.forward(x, parameters)
    np.testing.assert_allclose(y, layer.reference_forward(x, parameters), atol=1e-10)
    dx = layer.backward(dy, ctx)[0]
    np.testing.assert_allclose(dx, layer.reference_backward(dy, x, parameters)[0], atol=1e-9)
    assert isinstance(ctx, nn.LayerNormContext)


def test_problem_benchmarks_run_and_skip():
    _run(problems.TrainingStep, "time_steps", "quadratic", 1)
    _run(problems.TrainingStep, "time_steps", "logistic_regression", "full")
    with pytest.raises(NotImplementedError, match="no data"):
        _run(problems.TrainingStep, "time_steps", "rosenbrock", 32)
    with pytest.raises(NotImplementedError, match="full batch is batch size 1"):
        _run(problems.TrainingStep, "time_steps", "quadratic", "full")
    with pytest.raises(NotImplementedError, match="batch_size"):
        _run(problems.TrainingStep, "time_steps", "xor_mlp", 32)


def test_convergence_outcomes_are_deterministic():
    first = convergence.outcome("adam", "logistic_regression")
    assert first == convergence.outcome("adam", "logistic_regression")
    assert 0 < first["final_loss"] < math.log(2) + 1e-9
    assert 0.5 < first["test_accuracy"] <= 1
    assert 0 <= first["steps_to_target"] <= convergence.BUDGET + 1
    assert first["diverged_at"] == 0
    assert convergence.outcome("sgd", "quadratic")["test_accuracy"] is None


def test_convergence_tracks_read_the_cache():
    outcomes = {("sgd", "beale"): {"final_loss": 1.5, "steps_to_target": 7, "diverged_at": 0}}
    benchmark = convergence.Convergence()
    benchmark.setup(outcomes, "sgd", "beale")
    assert benchmark.track_final_loss() == 1.5
    assert benchmark.track_steps_to_target() == 7
    assert benchmark.track_diverged_at() == 0


def test_startup_measures_a_fresh_interpreter(tmp_path):
    seconds = startup.run_fresh("import", str(tmp_path))
    assert 0 < seconds["import"] < 60 and seconds["first_calls"] == 0
    with pytest.raises(RuntimeError, match="startup script"):
        startup.run_fresh("optimizer:no_such_optimizer", str(tmp_path))


# --------------------------------------------------------------------------------------------
# the CI check (.ci/bench-smoke): every benchmark once, quick, against the working tree
# --------------------------------------------------------------------------------------------
def _bench_smoke(*args, env=None, timeout=600):
    return subprocess.run(
        [str(ROOT / ".ci" / "bench-smoke"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable, **(env or {})},
        timeout=timeout,
        check=False,
    )


def test_bench_smoke_runs_a_few_benchmarks(asv_home):
    some = ["--bench", r"OptimizerStep\.time_steps\('adam'", "--bench", r"startup\.Import"]
    result = _bench_smoke(*some)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "startup.Import.track_import" in result.stdout
    assert "bench-smoke: every benchmark ran" in result.stdout


BROKEN_SUITE = """import time


class Cases:
    params = [1, 2]

    def time_fine(self, n):
        sum(range(100))

    def time_one_raises(self, n):
        if n == 2:
            raise RuntimeError("broken")


class Cached:
    def setup_cache(self):
        raise RuntimeError("no cache")

    def track_value(self, cache):
        return 1.0


class Slow:
    timeout = 1

    def time_sleeps(self):
        time.sleep(5)
"""


def _bench_smoke_of_suite(tmp_path, source):
    """``.ci/bench-smoke`` on a one-module suite ``cases.py`` holding ``source``."""
    suite = tmp_path / "benchmarks"
    suite.mkdir()
    (suite / "__init__.py").write_text("")
    (suite / "cases.py").write_text(source)
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    conf.update(repo=str(ROOT), benchmark_dir=str(suite), results_dir=str(tmp_path / "results"))
    (tmp_path / "asv.conf.json").write_text(json.dumps(conf))
    return _bench_smoke(env={"ASV_CONFIG": str(tmp_path / "asv.conf.json")})


def test_bench_smoke_fails_on_broken_benchmarks(asv_home, tmp_path):
    """A parameter combination that raises, a failing setup_cache and a timeout each fail the
    check, and it names them; the benchmark that works still runs."""
    result = _bench_smoke_of_suite(tmp_path, BROKEN_SUITE)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    summary = result.stdout[result.stdout.index("bench-smoke: FAILED") :]
    assert "cases.Cases.time_one_raises" in summary and "1/2 failed" in summary
    assert "Setting up cases" in summary
    assert "cases.Slow.time_sleeps" in summary
    assert "RuntimeError: broken" in result.stdout
    assert "cases.Cases.time_fine" in result.stdout


def test_bench_smoke_fails_on_a_suite_that_does_not_import(asv_home, tmp_path):
    result = _bench_smoke_of_suite(tmp_path, "import no_such_module_of_optbench\n")
    assert result.returncode == 1
    assert "no_such_module_of_optbench" in result.stdout


@pytest.mark.slow
def test_bench_smoke_runs_everything(asv_home):
    result = _bench_smoke(timeout=1800)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr
