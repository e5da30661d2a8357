"""Sweeps: grid checks, cell ids, the table, resuming after an interruption, atomic writes,
local processes and a Dask cluster giving the serial results, and the tuning protocol."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from process_helpers import kill_after_cells

from optbench import runner, sweep, tables

SMALL = {
    "problems": ["quadratic", "logistic_regression"],
    "optimizers": ["sgd", "adam"],
    "lrs": [1e-2, 1e-1],
    "batch_sizes": [100],
    "seeds": [0, 1],
    "steps": 6,
    "log_every": 3,
}


def small_grid(**changes):
    return sweep.Grid(**{**SMALL, **changes})


def without_time(frame):
    return frame.drop(columns="wall_time")


@pytest.fixture(scope="module")
def serial_table():
    return sweep.sweep(small_grid(), progress=False)


def test_table_is_the_cells_records_in_grid_order(serial_table):
    grid = small_grid()
    cells = grid.cells()
    assert len(cells) == 2 * 2 * 2 * 1 * 2
    assert serial_table["cell"].unique().tolist() == [sweep.cell_id(spec) for spec in cells]
    keys = serial_table.groupby("cell", sort=False).first()
    assert keys[["problem", "optimizer", "lr", "seed"]].values.tolist() == [
        [c["problem"], c["optimizer"], c["lr"], c["seed"]] for c in cells
    ]
    spec = cells[5]
    direct = runner.run(
        spec["optimizer"],
        spec["problem"],
        lr=spec["lr"],
        batch_size=100,
        steps=6,
        seed=spec["seed"],
        log_every=3,
    )
    mine = serial_table[serial_table["cell"] == sweep.cell_id(spec)].reset_index(drop=True)
    pd.testing.assert_frame_equal(without_time(mine.drop(columns="cell")), without_time(direct))


def test_cell_ids_are_stable_and_distinct():
    cells = small_grid().cells()
    ids = [sweep.cell_id(spec) for spec in cells]
    assert len(set(ids)) == len(ids) and all(len(i) == 16 for i in ids)
    assert ids == [sweep.cell_id(spec) for spec in small_grid().cells()]
    # the same grid spelled differently has the same cells
    respelled = small_grid(
        problems=["Quadratic", "logistic_regression"],
        optimizers=["SGD", "adam"],
        seeds=np.array([0, 1]),
        batch_sizes=[np.int64(100)],
    )
    assert [sweep.cell_id(spec) for spec in respelled.cells()] == ids
    # a change to anything that changes the run changes the id
    assert sweep.cell_id({**cells[0], "log_every": 2}) != ids[0]
    assert sweep.cell_id({**cells[0], "optimizer_options": {"momentum": 0.5}}) != ids[0]


def test_default_lr_grid_is_half_decades_around_the_registry_lr():
    assert sweep.default_lrs("adam") == (1e-5, 3.16e-5, 1e-4, 3.16e-4, 1e-3, 3.16e-3, 1e-2)
    grid = small_grid(lrs=None, problems=["quadratic"], seeds=[0])
    by_optimizer = pd.DataFrame(grid.cells()).groupby("optimizer")["lr"].apply(tuple)
    assert by_optimizer["sgd"] == sweep.default_lrs("sgd")
    assert by_optimizer["sgd"][4] == 1e-2


def test_options_reach_their_optimizer_and_problem():
    grid = small_grid(
        optimizer_options={"sgd": {"momentum": 0.9}},
        problem_options={"logistic_regression": {"l2": 0.1}},
        schedule="cosine",
        schedule_options={"eta_min": 0.0},
        seeds=[0],
        lrs=[0.1],
    )
    table = sweep.sweep(grid, progress=False)
    first = table.groupby(["problem", "optimizer"]).first()
    assert first.loc[("quadratic", "sgd"), "optimizer_options"] == '{"momentum": 0.9}'
    assert first.loc[("quadratic", "adam"), "optimizer_options"] == "{}"
    assert first.loc[("logistic_regression", "adam"), "problem_options"] == '{"l2": 0.1}'
    assert (table["schedule"] == "cosine(eta_min=0.0)").all()


def test_files_and_resume_after_lost_cells(tmp_path, serial_table, monkeypatch):
    out = tmp_path / "sweep1"
    first = sweep.sweep(small_grid(), out=out, progress=False)
    pd.testing.assert_frame_equal(without_time(first), without_time(serial_table))
    cell_files = sorted((out / "cells").glob("*.parquet"))
    assert len(cell_files) == 16 and not list((out / "cells").glob(".*"))
    pd.testing.assert_frame_equal(tables.read_table(out / "results.parquet"), first)

    # lose three cells and the table, as a sweep killed before they finished would have
    for path in cell_files[:3]:
        path.unlink()
    (out / "results.parquet").unlink()
    ran = []
    real_run_cell = sweep.run_cell
    monkeypatch.setattr(sweep, "run_cell", lambda spec: ran.append(spec) or real_run_cell(spec))
    resumed = sweep.sweep(small_grid(), out=out, progress=False)
    assert sorted(sweep.cell_id(spec) for spec in ran) == sorted(p.stem for p in cell_files[:3])
    # the cells read back are the very records written (wall_time included)
    kept = ~resumed["cell"].isin([p.stem for p in cell_files[:3]])
    pd.testing.assert_frame_equal(resumed[kept], first[kept])
    pd.testing.assert_frame_equal(without_time(resumed), without_time(first))
    assert resumed["cell"].nunique() == 16 and not resumed.duplicated(["cell", "step"]).any()


def test_interrupted_sweep_resumes_without_loss_or_duplicates(tmp_path, monkeypatch):
    out = tmp_path / "table.csv"
    real_run_cell = sweep.run_cell
    calls = []

    def interrupted(spec):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(spec)
        return real_run_cell(spec)

    monkeypatch.setattr(sweep, "run_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep.sweep(small_grid(), out=out, progress=False)
    cell_dir = tmp_path / "table.cells"
    assert len(list(cell_dir.glob("*.parquet"))) == 5 and not out.exists()

    monkeypatch.setattr(sweep, "run_cell", real_run_cell)
    resumed = sweep.sweep(small_grid(), out=out, progress=False)
    uninterrupted = sweep.sweep(small_grid(), out=tmp_path / "again", progress=False)
    pd.testing.assert_frame_equal(without_time(resumed), without_time(uninterrupted))
    on_disk = pd.read_csv(out)
    assert len(on_disk) == len(uninterrupted) and on_disk["cell"].nunique() == 16
    np.testing.assert_allclose(on_disk["train_loss"], uninterrupted["train_loss"], rtol=1e-15)


def test_killed_command_line_sweep_resumes(tmp_path):
    """SIGKILL a real `optbench sweep` after its first cells, then finish the sweep."""
    out = tmp_path / "killed"
    grid = {"problems": ["rosenbrock"], "optimizers": ["sgd", "adam"], "seeds": [0, 1, 2]}
    grid |= {"lrs": [1e-4, 1e-3], "steps": 10000, "log_every": 2500}
    command = [
        "sweep", "--problems", "rosenbrock",
        "--optimizers", "sgd,adam", "--lrs", "1e-4,1e-3", "--seeds", "0,1,2",
        "--steps", "10000", "--log-every", "2500", "--out", str(out), "--no-progress",
    ]  # fmt: skip
    kill_after_cells(command, out / "cells", 3)
    finished = {p.stem for p in (out / "cells").glob("*.parquet")}
    assert 3 <= len(finished) < 12 and not (out / "results.parquet").exists()

    resumed = sweep.sweep(sweep.Grid(**grid), out=out, progress=False)
    assert not [p for p in (out / "cells").iterdir() if p.name.startswith(".")]
    assert resumed["cell"].nunique() == 12 and not resumed.duplicated(["cell", "step"]).any()
    reference = sweep.sweep(sweep.Grid(**grid), progress=False)
    pd.testing.assert_frame_equal(without_time(resumed), without_time(reference))


def test_local_processes_give_the_serial_results(serial_table):
    parallel = sweep.sweep(small_grid(), jobs=2, progress=False)
    pd.testing.assert_frame_equal(without_time(parallel), without_time(serial_table))


def test_dask_cluster_gives_the_serial_results(serial_table, tmp_path):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = sweep.sweep(small_grid(), out=tmp_path / "dask", client=client, progress=False)
        by_address = sweep.sweep(small_grid(), scheduler=cluster.scheduler_address, progress=False)
    pd.testing.assert_frame_equal(without_time(on_dask), without_time(serial_table))
    pd.testing.assert_frame_equal(without_time(by_address), without_time(serial_table))
    assert len(list((tmp_path / "dask" / "cells").glob("*.parquet"))) == 16


def test_tune_chooses_the_best_rate_then_reruns_it(tmp_path):
    # gradient descent on the kappa = 10 quadratic: 1e-3 is slow, 0.15 near 2/(L + mu), 0.5
    # diverges
    grid = sweep.Grid(
        problems=["quadratic"],
        optimizers=["sgd"],
        lrs=[1e-3, 0.15, 0.5],
        steps=50,
        divergence_bound=1e3,
        log_every=10,
    )
    result = sweep.tune(grid, out=tmp_path / "tuned", progress=False)
    assert result.best[["problem", "optimizer", "lr"]].values.tolist() == [
        ["quadratic", "sgd", 0.15]
    ]
    scores = sweep.score_runs(result.search)
    assert scores.set_index("lr")["score"][0.5] == np.inf  # diverged: ranked last
    assert result.final["seed"].unique().tolist() == [1, 2, 3]
    assert (result.final["lr"] == 0.15).all()
    assert (tmp_path / "tuned" / "search" / "results.parquet").exists()
    assert (tmp_path / "tuned" / "final" / "results.parquet").exists()


def test_tune_metrics():
    grid = small_grid(problems=["logistic_regression"], seeds=[0])
    table = sweep.sweep(grid, progress=False)
    accuracy = sweep.score_runs(table, "final_test_accuracy")
    last = table.groupby("cell").last()
    np.testing.assert_array_equal(
        accuracy.set_index("cell")["score"], -last.loc[accuracy["cell"], "test_accuracy"]
    )
    with pytest.raises(ValueError, match="unknown metric 'best'; choose from final_loss"):
        sweep.score_runs(table, "best")


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"problems": ["quadratic", "qaudratic"]}, ValueError, "unknown problem 'qaudratic'; ch"),
        ({"optimizers": ["sgd", "adamx"]}, ValueError, "unknown optimizer 'adamx'; choose from"),
        ({"optimizers": []}, ValueError, "optimizers is empty"),
        ({"seeds": [0, 0]}, ValueError, "seeds lists 0 twice"),
        ({"seeds": [-1]}, ValueError, r"seed must be an integer in \[0, 2\*\*63 - 1\], got -1"),
        ({"seeds": [2**63]}, ValueError, "seed must be an integer in"),
        ({"lrs": [0.1, -0.1]}, ValueError, r"lrs\[1\] must be a finite number > 0.0, got -0.1"),
        ({"batch_sizes": [0]}, ValueError, "batch_sizes"),
        ({"batch_sizes": [5000]}, ValueError, "batch_size must be in"),
        ({"epochs": 2}, ValueError, "epochs or steps"),
        ({"log_every": 0}, ValueError, "log_every"),
        ({"optimizer_options": {"adam": {"momentum": 0.9}}}, ValueError, "adam has no option"),
        ({"optimizer_options": {"lion": {}}}, ValueError, "names 'lion', which is not in"),
        ({"optimizer_options": {"sgd": {"momentum": -1.0}}}, ValueError, "momentum"),
        ({"problem_options": {"quadratic": {"kappa": 0.5}}}, ValueError, "kappa"),
        ({"problem_options": {"quadratic": {"depth": 3}}}, ValueError, "has no option 'depth'"),
        ({"schedule": "linearly"}, ValueError, "unknown schedule 'linearly'"),
        ({"schedule_options": {"T_max": 3}}, ValueError, "need a schedule"),
        ({"divergence_bound": float("nan")}, ValueError, "divergence_bound"),
        ({"early_stopping": "test_loss"}, TypeError, "EarlyStopping"),
        (
            {"early_stopping": runner.EarlyStopping("test_accuracy")},
            ValueError,
            "monitors test_accuracy, which quadratic does not report",
        ),
    ],
)
def test_bad_grids(changes, error, match):
    with pytest.raises(error, match=match):
        small_grid(**changes)


def test_bad_sweep_arguments(tmp_path):
    with pytest.raises(TypeError, match=r"sweep\.Grid"):
        sweep.sweep({"problems": ["quadratic"]})
    with pytest.raises(ValueError, match="jobs"):
        sweep.sweep(small_grid(), jobs=0)
    with pytest.raises(ValueError, match="not both"):
        sweep.sweep(small_grid(), client=object(), scheduler="tcp://127.0.0.1:1")
    assert not os.listdir(tmp_path)


def test_a_second_sweep_on_the_same_out_is_refused_and_deletes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "shared"
    grid = small_grid(problems=["quadratic"], optimizers=["sgd"], seeds=[0])
    real_run_cell = sweep.run_cell
    first_is_running, first_may_go_on = threading.Event(), threading.Event()

    def run_cell(spec):
        if threading.current_thread() is not threading.main_thread():
            first_is_running.set()
            assert first_may_go_on.wait(60)
        return real_run_cell(spec)

    monkeypatch.setattr(sweep, "run_cell", run_cell)
    first = threading.Thread(target=lambda: sweep.sweep(grid, out=out, progress=False))
    first.start()
    try:
        assert first_is_running.wait(60)
        in_progress = out / "cells" / ".a-cell-being-written.tmp"
        in_progress.write_bytes(b"the first sweep's half-written cell")
        with pytest.raises(ValueError, match=f"out {str(out)!r} is in use by another sweep"):
            sweep.sweep(grid, out=out, progress=False)
        assert in_progress.exists() and not list((out / "cells").glob("*.parquet"))
    finally:
        first_may_go_on.set()
        first.join(60)
    assert len(list((out / "cells").glob("*.parquet"))) == 2  # the first sweep finished
    sweep.sweep(grid, out=out, progress=False)  # and let go of the folder


def test_a_tuning_campaign_on_a_folder_in_use_is_refused(tmp_path):
    out = tmp_path / "tuned"
    grid = sweep.Grid(problems=["quadratic"], optimizers=["sgd"], lrs=[0.1], steps=3)
    with (
        sweep._locked(out, out),  # as another process's campaign holds it
        pytest.raises(sweep.OutputInUse, match=f"out {str(out)!r} is in use"),
    ):
        sweep.tune(grid, out=out, progress=False)
    assert os.listdir(out) == []
    sweep.tune(grid, out=out, progress=False)


def test_a_cell_file_that_is_not_its_cell_is_run_again(tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    grid = small_grid(problems=["quadratic"], seeds=[0])
    first = sweep.sweep(grid, out=out, progress=False)
    ids = first["cell"].unique().tolist()
    cells = out / "cells"
    # one cell's file holds another valid cell's record, one is garbage, one is empty
    (cells / f"{ids[0]}.parquet").write_bytes((cells / f"{ids[1]}.parquet").read_bytes())
    (cells / f"{ids[2]}.parquet").write_bytes(b"not parquet")
    tables.write_table(first.iloc[:0], cells / f"{ids[3]}.parquet")
    ran = []
    real_run_cell = sweep.run_cell
    monkeypatch.setattr(sweep, "run_cell", lambda spec: ran.append(spec) or real_run_cell(spec))
    resumed = sweep.sweep(grid, out=out, progress=False)
    assert sorted(sweep.cell_id(spec) for spec in ran) == sorted([ids[0], ids[2], ids[3]])
    pd.testing.assert_frame_equal(without_time(resumed), without_time(first))
    for identifier in ids:
        assert sweep.read_cell(cells / f"{identifier}.parquet", identifier) is not None


def child_processes(pid):
    """Ids of the live (not zombie) processes whose parent is ``pid``."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            state, parent = stat.rsplit(")", 1)[1].split()[:2]
            if int(parent) == pid and state != "Z":
                children.append(int(entry))
    return children


def is_alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_killed_parallel_sweep_leaves_no_worker_behind(tmp_path):
    out = tmp_path / "killed"
    command = [
        sys.executable, "-m", "optbench", "sweep", "--problems", "rosenbrock",
        "--optimizers", "sgd,adam", "--lrs", "1e-4,1e-3", "--seeds", "0,1,2",
        "--steps", "20000", "--log-every", "5000", "--jobs", "2", "--out", str(out),
        "--no-progress",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers = []
    try:
        deadline = time.monotonic() + 120
        while not list((out / "cells").glob("*.parquet")):  # the workers are at work
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        workers = child_processes(process.pid)
        assert workers
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
    try:
        deadline = time.monotonic() + 20
        while any(is_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if is_alive(pid)]
    finally:
        for pid in workers:
            if is_alive(pid):
                os.kill(pid, signal.SIGKILL)
