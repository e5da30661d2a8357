"""Fixed targets: workloads, the procedure on a tiny budget (deterministic, resumable), the
targets shipped in the package, and the command."""

import json
import math

import pandas as pd
import pytest

from optbench import cli, sweep, targets

TINY = targets.Workload("logistic_regression", epochs=1, metric="test_accuracy")


def test_a_workload_names_itself_and_reads_its_metric():
    assert TINY.key == "logistic_regression batch=32 epochs=1"
    options = targets.Workload("digits_mlp", {"norm": "batch"}, batch_size=64, steps=10)
    assert options.key == "digits_mlp norm=batch batch=64 steps=10"
    record = pd.DataFrame(
        {"test_accuracy": [0.1, math.nan, 0.7], "full_train_loss": [2.0, 1.0, 0.5]}
    ).assign(diverged=False)
    assert TINY.final_value(record) == 0.7
    assert targets.Workload("quadratic", steps=5).final_value(record) == 0.5
    assert TINY.final_value(record.assign(diverged=[False, False, True])) == -math.inf
    with pytest.raises(ValueError, match="metric"):
        targets.Workload("quadratic", steps=5, metric="accuracy")
    with pytest.raises(ValueError, match="cifar"):
        targets.Workload("cifar", steps=5)


def test_the_target_is_the_best_baseline_median_and_is_deterministic(tmp_path, monkeypatch):
    entry = targets.set_target(TINY, trials=2, seeds=3, out=tmp_path, progress=False)
    labels = [result["label"] for result in entry["baselines"]]
    assert labels == [label for label, _, _ in targets.BASELINES]
    medians = [result["median"] for result in entry["baselines"]]
    assert entry["target"] == max(medians) and 0.5 < entry["target"] <= 1.0
    best = entry["baselines"][medians.index(max(medians))]
    assert entry["set_by"] == best["label"] and len(best["values"]) == 3
    assert entry["target"] == sorted(best["values"])[1]

    def refuse(spec):
        raise AssertionError("a finished run ran again")

    monkeypatch.setattr(sweep, "run_cell", refuse)
    again = targets.set_target(TINY, trials=2, seeds=3, out=tmp_path, progress=False)
    assert again == entry


def test_the_shipped_targets_cover_the_quick_workloads():
    shipped = targets.stored()
    assert shipped["version"] >= 1
    assert shipped["procedure"]["trials"] == targets.TRIALS
    assert shipped["procedure"]["seeds"] == targets.SEEDS
    labels = {label for label, _, _ in targets.BASELINES}
    for workload in targets.QUICK_WORKLOADS:
        entry = shipped["targets"][workload.key]
        assert targets.target_of(workload) == entry["target"]
        assert entry["set_by"] in labels and 0.0 < entry["target"] <= 1.0
        assert entry["target"] == max(r["median"] for r in entry["baselines"])
    assert targets.target_of(TINY) is None


def test_a_written_document_reads_back(tmp_path):
    entry = {"key": "k", "target": 0.5, "set_by": "AdamW", "baselines": []}
    document = targets.document([entry], version=3, trials=7, seeds=2)
    targets.write(document, tmp_path / "t.json")
    assert json.loads((tmp_path / "t.json").read_text()) == json.loads(json.dumps(document))
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_command_refuses_an_unknown_workload(capsys):
    assert cli.main(["targets", "--workloads", "cifar10"]) == 2
    assert "--workloads: unknown 'cifar10'" in capsys.readouterr().err


def test_the_command_compares_with_the_stored_targets(tmp_path, capsys):
    argv = ["targets", "--workloads", "logistic_regression", "--trials", "2", "--seeds", "1"]
    argv += ["--out", str(tmp_path / "runs"), "--write", str(tmp_path / "t.json")]
    assert cli.main([*argv, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "logistic_regression batch=32 epochs=5" in printed and "stored" in printed
    written = json.loads((tmp_path / "t.json").read_text())
    assert written["version"] == targets.stored()["version"] + 1
    # the measured target replaces the stored one; the other stored targets are kept
    key = "logistic_regression batch=32 epochs=5"
    stored = targets.stored()["targets"]
    assert sorted(written["targets"]) == sorted(set(stored) | {key})
    assert written["targets"][key]["key"] == key
    assert all(written["targets"][k] == stored[k] for k in stored if k != key)
    assert cli.main(["targets", "--workloads", "full:mnist1d_mlp,digits_mlp", "--trials", "x"])
    assert "--trials" in capsys.readouterr().err
