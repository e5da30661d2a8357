"""The throughput instrument on tiny configurations: rows, columns, arithmetic, CLI. No timed
assertions: only what must hold whatever the machine's speed."""

import dataclasses
import math
import os
import platform
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from optbench import cli, optim, registry, testing, throughput
from optbench.spec import Pass

TINY = {
    "threads": 2,
    "optimizers": ["adam", "sgd"],
    "sizes": [1000, 2600],
    "dtypes": ["float32"],
    "norm_names": ["layer_norm", "batch_norm"],
    "norm_shapes": [(8, 16)],
    "peer_names": ["numpy reference", "numpy in-place"],
    "repeats": 2,
    "min_batch_seconds": 1e-4,
    "settle_seconds": 0,
    "latency": False,
    "training": False,
}


@pytest.fixture(scope="module")
def tiny():
    return throughput.measure(**TINY)


def test_one_row_per_case(tiny):
    optimizer_rows = tiny[tiny["kind"] == "optimizer"]
    # 2 optimizers x 2 sizes x 2 layouts x 3 implementations
    assert len(optimizer_rows) == 24
    assert set(optimizer_rows["implementation"]) == {"optbench", *TINY["peer_names"]}
    assert set(optimizer_rows["layout"]) == set(throughput.LAYOUTS)
    norm_rows = tiny[tiny["kind"] == "norm"]
    assert len(norm_rows) == 2 * 3  # 2 layers x (optbench + 2 peers)
    assert set(norm_rows["layout"]) == {"8x16"}
    # one roofline per access pattern and size, serial and parallel: Adam's and SGD's at each
    # size, and one the two layers share
    roofline = tiny[tiny["kind"] == "roofline"]
    assert set(roofline["group"]) == {
        "roofline 1r 3u float32 1000",
        "roofline 1r 1u float32 1000",
        "roofline 1r 3u float32 2600",
        "roofline 1r 1u float32 2600",
        "roofline 1r 1w + 2r 1w float32 128",
    }
    assert len(roofline) == 5 * 2
    assert set(roofline["implementation"]) == {"numba serial", "numba parallel"}
    assert not (tiny["kind"] == "stream").any()  # the STREAM kernels only when asked
    assert len(tiny["group"].unique()) == 2 * 2 + 2 + 5


def test_columns_and_environment(tiny):
    assert list(tiny.columns[: len(throughput.COLUMNS)]) == list(throughput.COLUMNS)
    for column in ("vs_numpy_reference", "vs_numpy_in_place", "vs_flat", "cpu", "numba"):
        assert column in tiny.columns
    assert (tiny["threads"] == 2).all()
    assert (tiny["mode"] == "hot").all()
    assert tiny["numba"].iloc[0] == __import__("numba").__version__
    assert tiny["numba_threading_layer"].iloc[0] != ""


def test_rates_are_bytes_and_elements_over_time(tiny):
    np.testing.assert_allclose(tiny["gbps"], tiny["bytes"] / tiny["time_s"] / 1e9)
    np.testing.assert_allclose(tiny["elements_per_s"], tiny["n"] / tiny["time_s"])
    # the best batch's median call is no slower than the median of all calls
    assert (tiny["sustained_s"] <= tiny["time_s"] * (1 + 1e-12)).all()
    assert (tiny["time_p25_s"] <= tiny["time_s"]).all()
    assert (tiny["time_s"] <= tiny["time_p75_s"]).all()
    assert (tiny["time_p75_s"] <= tiny["time_p90_s"]).all()
    cases = tiny[tiny["kind"] != "roofline"]
    assert (cases["rounds"] == TINY["repeats"]).all()
    # a roofline is timed in every group that shares it: the two layers' twice as often
    roofline = tiny[tiny["kind"] == "roofline"].set_index("group")["rounds"]
    assert (roofline.loc["roofline 1r 1w + 2r 1w float32 128"] == 2 * TINY["repeats"]).all()


def test_each_row_has_the_roofline_of_its_passes(tiny):
    """Adam's rows (every implementation and layout) at a size share the roofline of one read
    and three updated arrays, timed in the same rounds; the roofline's own rows are at most 1
    of it (in each round it is the better of its serial and parallel kernels)."""
    roofline = tiny[tiny["kind"] == "roofline"]
    for case, label in (("adam", "1r 3u"), ("sgd", "1r 1u")):
        for n in TINY["sizes"]:
            rows = tiny[(tiny["case"] == case) & (tiny["n"] == n)]
            own = roofline[roofline["group"] == f"roofline {label} float32 {n}"]
            assert rows["roofline_gbps"].nunique() == 1
            assert (own["roofline_gbps"] == rows["roofline_gbps"].iloc[0]).all()
            # in every round the roofline is the better of its serial and parallel kernels
            assert (own["roofline_fraction"] <= 1.0).all()
            assert rows["roofline_fraction"].notna().all()
            assert (own["bytes"] == rows["bytes"].iloc[0]).all()
    norms = tiny[tiny["kind"] == "norm"]
    # the two layers share one roofline kernel, each paired with it in its own rounds
    assert norms["roofline_gbps"].notna().all() and norms["roofline_fraction"].notna().all()


def test_byte_model(tiny):
    rows = tiny[tiny["kind"] == "optimizer"].set_index(["case", "n", "layout", "implementation"])
    assert rows.loc[("adam", 1000, "flat", "optbench"), "bytes"] == 7 * 1000 * 4
    assert rows.loc[("sgd", 2600, "100 arrays", "numpy in-place"), "bytes"] == 3 * 2600 * 4
    assert rows.loc[("adam", 1000, "flat", "optbench"), "working_set_bytes"] == 4 * 1000 * 4
    norms = tiny[tiny["kind"] == "norm"]
    assert (norms["bytes"] == 5 * 128 * 4).all()


def test_two_pass_specs_declare_their_traffic():
    assert throughput.optimizer_words(optim.LAMB([np.zeros(3)])) == 10
    assert throughput.optimizer_words(optim.LARS([np.zeros(3)])) == 5
    assert throughput.optimizer_words(optim.LARS([np.zeros(3)], momentum=0.9)) == 7
    assert throughput.optimizer_words(optim.Adam([np.zeros(3)], amsgrad=True)) == 9
    assert throughput.optimizer_passes(optim.LAMB([np.zeros(3)])) == (
        Pass(reads=2, updates=2),
        Pass(reads=2, updates=1),
    )
    # the usual pass, from the state declaration: read g, update p and each buffer in use
    assert throughput.optimizer_passes(optim.Adam([np.zeros(3)])) == (Pass(reads=1, updates=3),)
    assert throughput.optimizer_passes(optim.SGD([np.zeros(3)])) == (Pass(reads=1, updates=1),)


def test_a_spec_whose_traffic_is_not_passes_is_named():
    spec = dataclasses.replace(registry.get("adam"), name="leaky", traffic=lambda options: 7)
    with pytest.raises(TypeError, match="optimizer 'leaky': traffic"):
        throughput.optimizer_passes(optim.make(spec, [np.zeros(3)]))
    # and the conformance checks (optbench check) report it as the traffic check's failure
    failures = testing.run_checks(spec, checks=["traffic"])
    assert [(f.spec, f.check) for f in failures] == [("leaky", "traffic")]
    assert "must give a tuple of spec.Pass" in failures[0].message


def test_roofline_warnings_mark_fractions_above_the_limit():
    frame = pd.DataFrame(
        [
            {
                **_target_row("adam", "optimizer", 30_000_000, "flat"),
                "gbps": gbps,
                "bytes": 7 * 30_000_000 * 4,
                "sustained_s": 7 * 30_000_000 * 4 / gbps / 1e9,
                "roofline_gbps": 40.0,
                "roofline_fraction": gbps / 40.0,
                "time_s": 0.01,
                "time_p25_s": 0.01,
                "time_p75_s": 0.01,
                "implementation": implementation,
            }
            for implementation, gbps in (("optbench", 38.0), ("torch fused", 44.0))
        ]
    )
    warnings = throughput.roofline_warnings(frame)
    assert warnings == [
        "adam float32 3e7 flat, torch fused: 44.0 GB/s against a roofline of 40.0 GB/s (median "
        "of its rounds' fractions 1.10)"
    ]
    assert list(throughput.table(frame)["roof"]) == ["0.95", "1.10!"]
    frame.loc[0, "roofline_fraction"] = 1.2
    result = throughput.targets(frame).set_index("case")
    assert result.loc["adam 3e7 flat", "measured"] == 1.2
    assert not result.loc["adam 3e7 flat", "met"]  # a warning, not a result


def test_peer_ratios(tiny):
    for _, group in tiny[tiny["kind"] != "roofline"].groupby(["group", "layout"]):
        times = group.set_index("implementation")["time_s"]
        for _, row in group.iterrows():
            assert row["vs_numpy_reference"] == pytest.approx(
                times["numpy reference"] / row["time_s"]
            )
            assert row["vs_numpy_in_place"] == pytest.approx(
                times["numpy in-place"] / row["time_s"]
            )
    reference = tiny[tiny["implementation"] == "numpy reference"]
    np.testing.assert_allclose(reference["vs_numpy_reference"], 1.0)


def test_flat_ratio(tiny):
    rows = tiny[(tiny["kind"] == "optimizer") & (tiny["implementation"] == "optbench")]
    rows = rows.set_index(["case", "n", "layout"])
    split = rows.loc[("adam", 2600, "100 arrays")]
    flat = rows.loc[("adam", 2600, "flat")]
    assert split["vs_flat"] == pytest.approx(flat["time_s"] / split["time_s"])
    assert math.isnan(flat["vs_flat"])


def test_table_summarizes_the_hot_rows(tiny):
    table = throughput.table(tiny)
    assert len(table) == 24 + 6
    assert {"case", "impl", "time", "GB/s", "roof", "vs_numpy_reference"} <= set(table.columns)
    assert throughput.table(tiny, latency=True).empty


def _target_row(case, kind, n, layout, **values):
    row = {"group": f"{case} float32 {n}", "case": case, "kind": kind, "n": n}
    row.update(implementation="optbench", dtype="float32", layout=layout, mode="hot")
    return {"roofline_fraction": np.nan, "vs_torch_fused": np.nan, **row, **values}


def test_targets_compare_the_measured_ratios_with_the_goals():
    frame = pd.DataFrame(
        [
            _target_row("adam", "optimizer", 30_000_000, "flat", roofline_fraction=0.95),
            _target_row("lion", "optimizer", 30_000_000, "flat", roofline_fraction=0.5),
            _target_row("lamb", "optimizer", 30_000_000, "flat", roofline_fraction=0.8),
            _target_row("adam", "optimizer", 100_000, "flat", vs_torch_fused=2.4),
            _target_row("adam", "optimizer", 100_000, "100 arrays", vs_torch_fused=12.0),
            _target_row("layer_norm", "norm", 256 * 1024, "256x1024", vs_torch=1.6),
            # not compared: a peer's row, a float64 row, a latency row
            {**_target_row("adam", "optimizer", 100_000, "flat"), "implementation": "torch fused"},
            {**_target_row("adam", "optimizer", 100_000, "flat"), "dtype": "float64"},
            {
                **_target_row("adam", "optimizer", 1000, "flat", vs_torch_fused=0.1),
                "group": "latency adam float32 1000",
            },
        ]
    )
    startup = {"import_s": 0.5, "first_step_compile_s": 2.5, "first_step_cached_s": 0.2}
    result = throughput.targets(frame, startup).set_index("case")
    assert result.loc["adam 3e7 flat", "met"] and not result.loc["lion 3e7 flat", "met"]
    # a spec with a reduce pass is held to 0.75 of the roofline, both passes counted
    assert result.loc["lamb 3e7 flat", "met"] and result.loc["lamb 3e7 flat", "goal"] == ">= 0.75"
    assert result.loc["adam 1e5 flat", "goal"] == ">= 2.5x"
    assert result.loc["adam 1e5 flat", "measured"] == 2.4
    assert not result.loc["adam 1e5 flat", "met"]
    assert result.loc["adam 1e5 100 arrays", "met"]  # 12 >= 10
    assert result.loc["layer_norm 256x1024", "met"]
    assert len(result) == 6 + len(throughput.STARTUP_TARGETS)
    assert list(result.loc["seconds", "met"]) == [True, False, True]
    assert throughput.targets(frame.iloc[:0]).empty


def test_dispatch_latency_rows():
    frame = throughput.dispatch_latency(
        optimizers=["sgd"],
        sizes=[2000],
        modes=["hot", "after sleep"],
        idle_seconds=1e-4,
        samples=3,
        rounds=1,
        torch=None,
    )
    implementations = set(frame["implementation"])
    assert {"optbench serial", "optbench parallel", "optbench"} <= implementations
    assert set(frame["mode"]) == {"hot", "after sleep"}
    assert (frame["group"] == "latency sgd float32 2000").all()
    assert (frame["calls_per_batch"] == 3).all()
    table = throughput.table(frame, latency=True)
    assert {"mode", "p90"} <= set(table.columns)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"dtypes": ["float16"]}, ValueError, "dtypes"),
        ({"optimizers": ["adamz"]}, ValueError, "optimizers"),
        ({"sizes": [0]}, ValueError, "sizes"),
        ({"sizes": [1.5]}, ValueError, "sizes"),
        ({"sizes": ["big"]}, TypeError, "sizes"),
        ({"layouts": ["diagonal"]}, ValueError, "layouts"),
        ({"peer_names": ["jax"]}, ValueError, "peer_names"),
        ({"norm_shapes": [(8,)]}, ValueError, "norm_shapes"),
        ({"stream": ["scale"]}, ValueError, "stream"),
        ({"repeats": 0}, ValueError, "repeats"),
        ({"min_batch_seconds": -1.0}, ValueError, "min_batch_seconds"),
        ({"threads": 0}, ValueError, "threads"),
        ({"threads": 10_000}, ValueError, "NUMBA_NUM_THREADS"),
    ],
)
def test_bad_arguments_are_refused_before_measuring(options, error, match):
    with pytest.raises(error, match=match):
        throughput.measure(**{**TINY, **options})


def test_cli_writes_the_csv(tmp_path, capsys):
    out = tmp_path / "sub" / "tp.csv"
    status = cli.main(
        [
            "throughput",
            "--optimizers",
            "sgd",
            "--sizes",
            "1e3",
            "--dtypes",
            "float32",
            "--layouts",
            "flat",
            "--norms",
            "rms_norm",
            "--norm-shapes",
            "8x16",
            "--peers",
            "numpy in-place",
            "--repeats",
            "1",
            "--min-batch",
            "0.0001",
            "--no-latency",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    frame = pd.read_csv(out)
    assert set(frame["case"]) >= {"sgd", "rms_norm", "roofline"}
    assert not [p for p in os.listdir(out.parent) if p != "tp.csv"]  # no temporary left
    printed = capsys.readouterr().out
    assert "Throughput" in printed and "sgd" in printed and f"wrote {len(frame)} rows" in printed


@pytest.mark.parametrize(
    "arguments",
    [
        ["--sizes", "1e3,x"],
        ["--sizes", "10.5"],
        ["--dtypes", "float16"],
        ["--optimizers", "adamz"],
        ["--norm-shapes", "8by16"],
        ["--threads", "0"],
        ["--peers", "jax"],
    ],
)
def test_cli_bad_values_exit_2(arguments, capsys):
    assert cli.main(["throughput", *arguments, "--no-latency"]) == 2
    assert "optbench throughput: error" in capsys.readouterr().err


def test_registry_drives_the_default_optimizers():
    """measure() with no optimizers argument covers every registry entry."""
    frame = throughput.measure(
        **{**TINY, "sizes": [100], "layouts": ["flat"], "norms": False, "peer_names": []}
    )
    assert set(frame[frame["kind"] == "optimizer"]["case"]) == {"adam", "sgd"}
    all_names = throughput.measure(
        **{
            **TINY,
            "optimizers": None,
            "sizes": [100],
            "layouts": ["flat"],
            "norms": False,
            "peer_names": [],
            "stream": ["update"],
        }
    )
    assert set(all_names[all_names["kind"] == "optimizer"]["case"]) == {
        info.name for info in registry.specs()
    }


def test_two_openmp_runtimes_coexist():
    """torch's OpenMP runtime and Numba's, in one process, alternating parallel work: no crash,
    right results, and no more threads than the two runtimes use apart."""
    pytest.importorskip("torch")
    script = """
import os, sys
import numpy as np
use_torch, use_numba = sys.argv[1] == "1", sys.argv[2] == "1"
if use_torch:
    import torch
    torch.set_num_threads(2)
    t = torch.zeros(1 << 20)
if use_numba:
    import numba
    numba.set_num_threads(2)
    from optbench import bandwidth
    a, b = np.zeros(1 << 20), np.ones(1 << 20)
for _ in range(20):
    if use_torch:
        t.add_(1.0)
    if use_numba:
        bandwidth.update_parallel(a, b, 1.0)
assert not use_torch or float(t[-1]) == 20.0
assert not use_numba or a[-1] == 20.0
print(len(os.listdir("/proc/self/task")))
"""

    def threads(use_torch, use_numba):
        done = subprocess.run(
            [sys.executable, "-c", script, str(int(use_torch)), str(int(use_numba))],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        return int(done.stdout.split()[-1])

    both = threads(True, True)
    assert both <= threads(True, False) + threads(False, True)


STARTUP_NAMES = [
    "import",
    "first_step_compile",
    "first_step_cached",
    "first_parallel_step_compile",
    "first_parallel_step_cached",
]


@pytest.mark.slow
def test_startup_times():
    times = throughput.startup_times("sgd")
    assert set(times) == {f"{n}_s" for n in STARTUP_NAMES} | {f"{n}_cpu_s" for n in STARTUP_NAMES}
    assert all(value > 0 for value in times.values())


def test_startup_times_compiles_then_loads_from_one_cache(monkeypatch):
    calls = []

    def measure(target, cache_dir, *, dispatch="auto", timeout):
        calls.append((target, cache_dir, dispatch))
        seconds = len(calls)
        return {
            "import_s": seconds,
            "import_cpu_s": -seconds,
            "first_calls_s": 10 * seconds,
            "first_calls_cpu_s": -10 * seconds,
        }

    monkeypatch.setattr(throughput.startup, "measure", measure)
    times = throughput.startup_times("SGD")
    assert [(target, dispatch) for target, _, dispatch in calls] == [
        ("import", "auto"),
        ("optimizer:sgd", "serial"),
        ("optimizer:sgd", "serial"),
        ("optimizer:sgd", "parallel"),
        ("optimizer:sgd", "parallel"),
    ]
    assert len({cache_dir for _, cache_dir, _ in calls}) == 1
    assert list(times) == [f"{n}_s" for n in STARTUP_NAMES] + [f"{n}_cpu_s" for n in STARTUP_NAMES]
    assert list(times.values()) == [1, 20, 30, 40, 50, -1, -20, -30, -40, -50]


def test_cli_refuses_an_unwritable_out_before_measuring(tmp_path, capsys, monkeypatch):
    def measure(**options):
        raise AssertionError("measured before checking --out")

    monkeypatch.setattr(throughput, "measure", measure)
    assert cli.main(["throughput", "--out", str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err
    for out, message in [
        (str(tmp_path / ("x" * 300 + ".csv")), "a name is longer than"),
        (str(tmp_path / "\udcff.csv"), "not valid UTF-8"),
    ]:
        assert cli.main(["throughput", "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.startswith("optbench throughput: error: --out ") and message in err


FAULTS_SCRIPT = """
import resource, sys
import numpy as np
from optbench import throughput
kept = throughput.keep_freed_memory() if sys.argv[1] == "keep" else None
for _ in range(3):
    np.empty(1 << 20).fill(1.0)  # 8 MB, freed at once
    np.empty(1 << 20).fill(1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    a = np.empty(1 << 20); a.fill(1.0)
    b = np.empty(1 << 20); b.fill(1.0)
    del a, b
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_kept_freed_memory_is_reused_without_page_faults():
    def run(mode):
        done = subprocess.run(
            [sys.executable, "-c", FAULTS_SCRIPT, mode], capture_output=True, text=True, check=True
        )
        kept, faults = done.stdout.split()
        return kept, int(faults)

    kept, faults = run("keep")
    assert kept == "True"
    # by default the 8 MB blocks are unmapped when freed: about 20,000 faults (2 MB pages
    # where the kernel gives them); kept, about 500
    assert run("default")[1] > 10 * faults


def test_training_steps_are_timed_side_by_side_with_torch():
    frame = throughput.measure(
        **{
            **TINY,
            "optimizers": (),
            "norms": False,
            "training": True,
            "training_problems": ["digits_mlp"],
            "training_batch_sizes": [16],
            "peer_names": ["torch"],
        }
    )
    rows = frame[frame["kind"] == "training"]
    expected = {"optbench", "torch"} if throughput._import_torch() else {"optbench"}
    assert set(rows["implementation"]) == expected
    assert set(rows["layout"]) == {"batch 16"} and set(rows["case"]) == {"digits_mlp"}
    # digits_mlp: 64 -> 128 -> 64 -> 10
    assert (rows["n"] == 64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10).all()
    assert rows["roofline_fraction"].isna().all() and (rows["time_s"] > 0).all()
    if "torch" in expected:
        optbench_row = rows[rows["implementation"] == "optbench"].iloc[0]
        torch_row = rows[rows["implementation"] == "torch"].iloc[0]
        assert optbench_row["vs_torch"] == pytest.approx(
            torch_row["time_s"] / optbench_row["time_s"]
        )
    assert throughput.table(frame, kinds=("training",))["case"].tolist() == ["digits_mlp"] * len(
        expected
    )


def test_training_targets_cover_batch_32_rows():
    frame = pd.DataFrame(
        {
            "implementation": ["optbench"] * 2,
            "mode": ["hot"] * 2,
            "dtype": ["float32"] * 2,
            "group": ["g1", "g2"],
            "kind": ["training"] * 2,
            "case": ["digits_mlp", "modular_addition"],
            "layout": ["batch 32"] * 2,
            "n": [1, 2],
            "vs_torch": [1.4, 1.1],
        }
    )
    result = throughput.targets(frame)
    assert result["met"].tolist() == [False, True]
    assert result["case"].tolist() == ["digits_mlp batch 32", "modular_addition batch 32"]
