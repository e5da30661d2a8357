"""Fixed targets: one value of a validation metric per workload, set once by a documented
procedure and stored in the package, so that adding an optimizer to a comparison changes no
other optimizer's score.

A *workload* is a problem with its options, batch size and budget, and the metric its runs are
judged by: held-out accuracy (higher is better) for a classifier, the full training loss
(lower is better) for a problem without held-out data. Its *target* comes from the baselines
(AlgoPerf's procedure, on optbench's workloads): each of ``BASELINES`` (AdamW, NAdamW,
heavy-ball SGD, Nesterov SGD) is tuned by a campaign of ``trials`` quasi-random trials
(:mod:`optbench.tuning`, one study, the final value of the metric as its score); its best
setting is re-run on ``seeds`` new seeds, and the median of their final metric is the
baseline's result. The target is the best of the baselines' results.

``optbench targets`` reruns the procedure and compares with the stored targets
(``optbench/data/targets.json``, whose ``version`` changes whenever a target does);
``--write`` stores what it measured.
"""

import json
import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from . import runner, sweep, tables, tuning, validation

TARGETS_FILE = "targets.json"
# (label, optimizer, fixed options) of the baselines that set the targets
BASELINES = (
    ("AdamW", "adamw", {}),
    ("NAdamW", "nadam", {"decoupled_weight_decay": True}),
    ("heavy-ball SGD", "sgd", {}),
    ("Nesterov SGD", "sgd", {"nesterov": True}),
)
TRIALS = 50
SEEDS = 5
# metric of a workload -> (the record's column, whether higher is better)
METRICS = {"test_accuracy": ("test_accuracy", True), "train_loss": ("full_train_loss", False)}


@dataclass(frozen=True)
class Workload:
    """A problem as the protocol runs it: options, batch size, budget and the metric judged
    (``"test_accuracy"`` or ``"train_loss"``)."""

    problem: str
    options: dict = field(default_factory=dict)
    batch_size: int | str = 32
    epochs: int | None = None
    steps: int | None = None
    metric: str = "train_loss"

    def __post_init__(self):
        object.__setattr__(self, "problem", runner.resolve_problem_class(self.problem).name)
        validation.choice("metric", self.metric, tuple(METRICS))
        object.__setattr__(self, "options", dict(self.options))

    @property
    def key(self):
        """``problem[ option=value...] batch=N epochs=E`` (or ``steps=S``): the workload's name."""
        options = " ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        budget = f"epochs={self.epochs}" if self.epochs is not None else f"steps={self.steps}"
        return " ".join(p for p in (self.problem, options, f"batch={self.batch_size}", budget) if p)

    @property
    def higher_is_better(self):
        return METRICS[self.metric][1]

    def final_value(self, record):
        """The metric at a run's last evaluation (``-inf`` or ``inf``, the worst, if it
        diverged)."""
        column = METRICS[self.metric][0]
        worst = -math.inf if self.higher_is_better else math.inf
        if record["diverged"].any():
            return worst
        values = record[column].dropna()
        return float(values.iloc[-1]) if len(values) else worst


# the quick report's problems with held-out data, at its budgets (a closed-form problem's best
# baseline reaches machine precision: a target there would only rank convergence to 1e-16)
QUICK_WORKLOADS = (
    Workload("logistic_regression", epochs=5, metric="test_accuracy"),
    Workload("digits_mlp", epochs=5, metric="test_accuracy"),
    Workload("mnist1d_cnn", epochs=3, metric="test_accuracy"),
)
# the full report's problems with held-out data, at its budgets
FULL_WORKLOADS = tuple(
    Workload(problem, epochs=30, metric="test_accuracy")
    for problem in (
        "logistic_regression",
        "digits_mlp",
        "deep_sigmoid_mlp",
        "mnist1d_mlp",
        "mnist1d_cnn",
    )
)


def _score(workload):
    """The campaign metric (lower is better) that matches the workload's."""
    return "final_test_accuracy" if workload.metric == "test_accuracy" else "final_train_loss"


def baseline_result(workload, label, optimizer, fixed, *, trials, seeds, out, jobs, progress):
    """One baseline on one workload: its tuned setting and the median over ``seeds`` re-runs
    of the final metric. Returns a dict (label, optimizer, lr, options, values, median)."""
    campaign = tuning.Campaign(
        optimizer,
        workload.problem,
        trials=trials,
        studies=1,
        fixed=fixed,
        batch_size=workload.batch_size,
        epochs=workload.epochs,
        steps=workload.steps,
        problem_options=workload.options,
        log_every=max(1, (workload.steps or 1) // 100),
        metric=_score(workload),
    )
    folder = None if out is None else Path(out) / _slug(f"{workload.key} {label}")
    result = tuning.run(campaign, folder and folder / "search", jobs=jobs, progress=progress)
    best = result.best.iloc[0]
    chosen = next(row for row in campaign.trial_plan() if row["trial"] == best["trial"])
    cells = []
    for seed in range(1, seeds + 1):
        spec = dict(chosen["spec"], seed=int(best["seed"]) + seed)
        cells.append(spec)
    runs = sweep.run_cells(
        cells, folder and folder / "final", jobs=jobs, progress=progress, desc="final"
    )
    values = [workload.final_value(run) for _, run in runs.groupby("cell", sort=False)]
    spec = chosen["spec"]
    return {
        "label": label,
        "optimizer": optimizer,
        "lr": float(spec["lr"]),
        "options": json.loads(json.dumps(spec["optimizer_options"], default=list)),
        "values": values,
        "median": float(np.median(values)),
    }


def set_target(workload, *, trials=TRIALS, seeds=SEEDS, out=None, jobs=1, progress=True):
    """The target of ``workload`` by the procedure of the module docstring: a dict with the
    workload, the target, the baseline that set it and every baseline's result."""
    results = [
        baseline_result(
            workload,
            label,
            optimizer,
            fixed,
            trials=trials,
            seeds=seeds,
            out=out,
            jobs=jobs,
            progress=progress,
        )
        for label, optimizer, fixed in BASELINES
    ]
    pick = max if workload.higher_is_better else min
    best = pick(results, key=lambda r: r["median"])
    return {
        "workload": asdict(workload),
        "key": workload.key,
        "target": best["median"],
        "set_by": best["label"],
        "baselines": results,
    }


def _slug(text):
    return "".join(c if c.isalnum() or c in "._=" else "-" for c in text)


# --------------------------------------------------------------------------------------------
# the stored targets
# --------------------------------------------------------------------------------------------
def stored():
    """The targets shipped with the package: ``{"version", "procedure", "targets": {key:
    entry}}`` (an empty ``targets`` where none were set)."""
    path = resources.files("optbench") / "data" / TARGETS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {"version": 0, "procedure": {}, "targets": {}}


def target_of(workload):
    """The stored target of ``workload`` (a :class:`Workload`), or None."""
    entry = stored()["targets"].get(workload.key)
    return None if entry is None else float(entry["target"])


def document(entries, *, version, trials, seeds, keep=None):
    """The JSON document of ``entries`` (results of :func:`set_target`) and of the entries of
    ``keep`` (``{key: entry}``, e.g. the stored targets) that ``entries`` do not set again."""
    return {
        "version": version,
        "procedure": {
            "baselines": [
                {"label": label, "optimizer": optimizer, "fixed": fixed}
                for label, optimizer, fixed in BASELINES
            ],
            "trials": trials,
            "seeds": seeds,
            "rule": "each baseline tuned by quasi-random trials (one study); its best setting "
            "re-run on the seeds; the target is the best median of the final metric",
        },
        "targets": {**(keep or {}), **{entry["key"]: entry for entry in entries}},
    }


def write(document_, path):
    """Write a targets document atomically."""
    text = json.dumps(document_, indent=1, sort_keys=True) + "\n"
    tables.atomic_write(Path(path), lambda file: file.write(text))


def comparison(entries):
    """One row per workload: the measured target, the stored one and their ratio."""
    shipped = stored()["targets"]
    rows = []
    for entry in entries:
        old = shipped.get(entry["key"])
        rows.append(
            {
                "workload": entry["key"],
                "target": entry["target"],
                "set_by": entry["set_by"],
                "stored": math.nan if old is None else float(old["target"]),
            }
        )
    return pd.DataFrame(rows)
