"""The command line of run, sweep and list: outputs, option parsing and one-line errors."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from optbench import problems, registry, schedules, tables
from optbench.cli import main


def run_cli(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_run_writes_csv_and_parquet(tmp_path, capsys):
    for suffix in ("csv", "parquet"):
        path = tmp_path / f"run.{suffix}"
        status, out, err = run_cli(
            capsys,
            "run", "--problem", "logistic_regression", "--optimizer", "adam", "--lr", "1e-2",
            "--batch-size", "100", "--epochs", "2", "--seed", "3", "--out", str(path),
        )  # fmt: skip
        assert status == 0 and err == ""
        table = tables.read_table(path)
        assert table["step"].iat[-1] == 16 and (table["seed"] == 3).all()
        assert {"train_loss", "test_loss", "test_accuracy", "wall_time", "diverged"} <= set(table)
        assert "logistic_regression adam lr=0.01: 16 steps (2 epochs)" in out
        assert "test accuracy" in out and f"wrote {len(table)} rows" in out


def test_run_passes_options_through(tmp_path, capsys):
    path = tmp_path / "run.csv"
    status, _, _ = run_cli(
        capsys,
        "run", "--problem", "digits_mlp", "--optimizer", "sgd", "--opt", "momentum=0.9",
        "--opt", "nesterov=true", "--problem-opt", "hidden=16", "--problem-opt", "norm=layer",
        "--batch-size", "full", "--steps", "4", "--schedule", "cosine",
        "--schedule-opt", "warmup=2", "--record-layer-grad-norms", "--out", str(path),
    )  # fmt: skip
    assert status == 0
    table = pd.read_csv(path)
    assert json.loads(table["optimizer_options"].iat[0]) == {"momentum": 0.9, "nesterov": True}
    assert json.loads(table["problem_options"].iat[0]) == {"hidden": "16", "norm": "layer"}
    assert table["schedule"].iat[0] == "cosine(warmup=2)"
    assert (table["batch_size"] == problems.make("digits_mlp").n_train).all()
    assert "layer_grad_norm_0" in table


def test_adam_betas_and_none_values(tmp_path, capsys):
    path = tmp_path / "run.csv"
    status, _, _ = run_cli(
        capsys,
        "run", "--problem", "quadratic", "--optimizer", "adam", "--steps", "3",
        "--opt", "betas=0.8,0.99", "--opt", "clip_norm=none", "--out", str(path),
    )  # fmt: skip
    assert status == 0
    options = json.loads(pd.read_csv(path)["optimizer_options"].iat[0])
    assert options == {"betas": [0.8, 0.99], "clip_norm": None}


def test_lr_range_test_command(capsys):
    status, out, _ = run_cli(
        capsys,
        "run", "--problem", "logistic_regression", "--optimizer", "sgd", "--lr-range-test",
        "--min-lr", "1e-4", "--max-lr", "100", "--steps", "60", "--batch-size", "50",
    )  # fmt: skip
    assert status == 0 and out.startswith("suggested lr ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimizer", "adamm"], "unknown optimizer 'adamm'; choose from sgd, adagrad"),
        (["--problem", "mnist"], "unknown problem 'mnist'; choose from quadratic,"),
        (["--lr", "fast"], "--lr 'fast': expected a number"),
        (["--lr", "nan"], "--lr 'nan': expected a finite number"),
        (["--batch-size", "0"], "--batch-size '0': expected an integer >= 1"),
        (["--steps", "1.5"], "--steps '1.5': expected an integer"),
        (["--seed", "-1"], "--seed '-1': expected an integer >= 0"),
        (["--opt", "momentum"], "--opt 'momentum': expected KEY=VALUE"),
        (["--opt", "momentum=0.9"], "adam has no option 'momentum'; its options are: betas"),
        (["--opt", "amsgrad=sure"], "optimizer option amsgrad='sure': expected true or false"),
        (["--opt", "betas=0.9"], "betas='0.9': expected 2 comma-separated numbers"),
        (["--opt", "nonfinite=ignore"], "nonfinite must be one of"),
        (["--problem-opt", "depth=3"], "quadratic has no option 'depth'; its options are: d,"),
        (["--problem-opt", "kappa=high"], "problem option kappa='high': expected a float"),
        (["--schedule", "linearly"], "unknown schedule 'linearly'; choose from constant, step"),
        (["--schedule-opt", "T_max=5"], "--schedule-opt needs --schedule"),
        (["--schedule", "cosine", "--schedule-opt", "T=5"], "schedule cosine has no option 'T'"),
        (["--schedule", "sgdr", "--schedule-opt", "T_0=x"], "T_0='x': expected a int"),
        (["--patience", "3"], "--patience and --min-delta need --early-stopping MONITOR"),
        (["--early-stopping", "test_loss"], "does not report"),
        (["--early-stopping", "loss"], "monitor 'loss' is not a column that can be monitored"),
        (["--out", "run.txt"], "--out 'run.txt': the file name must end in .csv or .parquet"),
        (["--record-params", "--problem-opt", "d=3"], "2 parameters"),
    ],
)
def test_run_errors_are_one_line(capsys, argv, message):
    base = {"--problem": "quadratic", "--optimizer": "adam", "--steps": "3"}
    flags = [a for a in argv if a.startswith("--")]
    argv = [x for k, v in base.items() if k not in flags for x in (k, v)] + argv
    status, out, err = run_cli(capsys, "run", *argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("optbench run: error: ")
    assert message in err and "Traceback" not in err


def unwritable_outputs(tmp_path):
    """(--out, message) pairs that no run could write, each found only after training once."""
    outputs = [
        (tmp_path / ("x" * 300 + ".parquet"), "a name is longer than"),
        (tmp_path / "\udcff.csv", "the name is not valid UTF-8"),
        (tmp_path / "plain" / "deeper" / "run.csv", "is not a directory"),
    ]
    if os.path.isdir("/sys/kernel"):  # sysfs: even root cannot create a file there
        outputs.append(("/sys/run.csv", "cannot write in '/sys'"))
    return outputs


def test_run_checks_its_output_before_training(tmp_path, capsys):
    (tmp_path / "plain").write_text("")
    for out, message in unwritable_outputs(tmp_path):
        status, stdout, err = run_cli(
            capsys, "run", "--problem", "quadratic", "--optimizer", "sgd", "--steps", "3",
            "--out", str(out),
        )  # fmt: skip
        assert status == 2 and stdout == ""  # no training summary: nothing was trained
        assert err.startswith("optbench run: error: --out ") and err.count("\n") == 1
        assert message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


def test_run_refuses_a_seed_its_table_cannot_hold(tmp_path, capsys):
    status, stdout, err = run_cli(
        capsys, "run", "--problem", "quadratic", "--optimizer", "sgd", "--steps", "3",
        "--seed", str(2**64), "--out", str(tmp_path / "run.parquet"),
    )  # fmt: skip
    assert status == 2 and stdout == "" and not (tmp_path / "run.parquet").exists()
    assert "seed must be an integer in [0, 2**63 - 1], got 18446744073709551616" in err


def test_sweep_checks_its_output_before_any_cell(tmp_path, capsys):
    (tmp_path / "plain").write_text("")
    outputs = [(tmp_path / "plain", "is a file; give a directory")]
    outputs += [(tmp_path / "plain" / "s", "is not a directory")]
    outputs += [(tmp_path / "plain" / "s.csv", "is not a directory")]
    outputs += [(p, m) for p, m in unwritable_outputs(tmp_path) if "UTF-8" not in m]
    outputs += [(tmp_path / ("x" * 300), "a name is longer than")]
    for out, message in outputs:
        status, stdout, err = run_cli(
            capsys, "sweep", "--problems", "quadratic", "--optimizers", "sgd", "--steps", "3",
            "--out", str(out), "--no-progress",
        )  # fmt: skip
        assert status == 2 and stdout == "" and err.count("\n") == 1, err
        assert err.startswith("optbench sweep: error: --out ") and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


def test_sweep_tune_refuses_a_table_out(tmp_path, capsys):
    status, stdout, err = run_cli(
        capsys, "sweep", "--problems", "quadratic", "--optimizers", "sgd", "--steps", "3",
        "--tune", "--out", str(tmp_path / "t.parquet"), "--no-progress",
    )  # fmt: skip
    assert status == 2 and stdout == "" and "tuning writes a directory" in err
    assert not os.listdir(tmp_path)


def test_sweep_unreachable_scheduler_is_a_one_line_error(tmp_path, capsys):
    pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        status, stdout, err = run_cli(
            capsys, "sweep", "--problems", "quadratic", "--optimizers", "sgd", "--steps", "3",
            "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path / "s"), "--no-progress",
        )  # fmt: skip
    assert status == 2 and stdout == "" and err.count("\n") == 1
    assert "scheduler 'tcp://127.0.0.1:9': cannot connect" in err


def test_sweep_command_and_resume(tmp_path, capsys):
    out = tmp_path / "sweep1"
    argv = [
        "sweep", "--problems", "quadratic,logistic_regression", "--optimizers", "sgd,adam",
        "--lrs", "1e-2,1e-1", "--batch-sizes", "50,full", "--seeds", "0,1", "--steps", "5",
        "--opt", "sgd.momentum=0.9", "--problem-opt", "logistic_regression.l2=0.01",
        "--out", str(out), "--no-progress",
    ]  # fmt: skip
    status, stdout, _ = run_cli(capsys, *argv)
    assert status == 0 and "32 cells (0 diverged)" in stdout
    table = tables.read_table(out / "results.parquet")
    assert table["cell"].nunique() == 32
    sgd = table[table["optimizer"] == "sgd"]
    assert (sgd["optimizer_options"] == '{"momentum": 0.9}').all()
    assert set(table["batch_size"]) == {1, 50, 750}  # full batch: the training set's size
    status, stdout, _ = run_cli(capsys, *argv)  # everything on disk: nothing re-run
    assert status == 0
    pd.testing.assert_frame_equal(tables.read_table(out / "results.parquet"), table)


def test_sweep_tune_command(tmp_path, capsys):
    status, stdout, _ = run_cli(
        capsys,
        "sweep", "--problems", "quadratic", "--optimizers", "sgd", "--lrs", "0.001,0.15,0.5",
        "--steps", "40", "--divergence-bound", "1e3", "--tune", "--final-seeds", "5,6",
        "--out", str(tmp_path / "tuned"), "--no-progress",
    )  # fmt: skip
    assert status == 0
    assert "quadratic       sgd" in stdout and "0.15" in stdout and "2 cells" in stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--problems", "quadratic,,rosenbrock"], "expected a comma-separated list without gaps"),
        (["--optimizers", "sgd,adamx"], "unknown optimizer 'adamx'; choose from"),
        (["--lrs", "0.1,-1"], "--lrs '-1': expected a finite number > 0"),
        (["--batch-sizes", "32,big"], "--batch-sizes 'big': expected an integer"),
        (["--seeds", "0,0"], "seeds lists 0 twice"),
        (["--opt", "lion.betas=0.9,0.99"], "'lion' is not in the grid (sgd, adam)"),
        (["--opt", "momentum=0.9"], "adam has no option 'momentum'"),
        (["--jobs", "0"], "--jobs '0': expected an integer >= 1"),
        (["--final-seeds", "1"], "--final-seeds and --metric need --tune"),
        (["--tune", "--metric", "best"], "--metric 'best': choose from final_loss, final_train"),
    ],
)
def test_sweep_errors_are_one_line(capsys, tmp_path, argv, message):
    base = {"--problems": "quadratic", "--optimizers": "sgd,adam", "--steps": "3"}
    flags = [a for a in argv if a.startswith("--")]
    argv = [x for k, v in base.items() if k not in flags for x in (k, v)] + argv
    status, out, err = run_cli(capsys, "sweep", *argv, "--out", str(tmp_path / "s"))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()  # checked before anything is written


def test_list_names_everything(capsys):
    status, out, _ = run_cli(capsys, "list")
    assert status == 0
    for name in [*problems.PROBLEMS, *registry.names(), *schedules.SCHEDULES]:
        assert f"\n  {name} " in out
    assert "momentum" in out and "norm" in out and "T_max" in out and "warmup" in out
    status, out, _ = run_cli(capsys, "list", "schedules")
    assert out.startswith("schedules") and "optimizers" not in out
    status, _, err = run_cli(capsys, "list", "models")
    assert status == 2 and "unknown section 'models'; choose from problems" in err


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_help_explains_every_option(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    expected = ["--opt", "--problem-opt", "--epochs", "--steps", "--schedule", "--schedule-opt"]
    expected += ["--log-every", "--early-stopping", "--divergence-bound", "--out"]
    if command == "run":
        expected += ["--problem", "--optimizer", "--lr", "--batch-size", "--seed"]
        expected += ["--lr-range-test", "--record-params"]
    else:
        expected += ["--problems", "--optimizers", "--lrs", "--batch-sizes", "--seeds"]
        expected += ["--jobs", "--scheduler", "--tune", "--metric"]
    for option in expected:
        assert option in text


def test_python_dash_m_optbench(tmp_path):
    path = tmp_path / "run.parquet"
    argv = ["run", "--problem", "rosenbrock", "--optimizer", "adam", "--lr", "0.01"]
    argv += ["--steps", "50", "--record-params", "--out", str(path)]
    completed = subprocess.run(
        [sys.executable, "-m", "optbench", *argv], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert "rosenbrock adam lr=0.01: 50 steps" in completed.stdout
    table = pd.read_parquet(path)
    assert len(table) == 51 and {"param_0", "param_1"} <= set(table)
    failed = subprocess.run(
        [sys.executable, "-m", "optbench", "run", "--problem", "rosenbrock", "--optimizer", "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().startswith("optbench run: error: unknown optimizer 'x'")
