"""Baseline packs: the tuned runs of a profile's optimizers on its studies, in one Parquet file,
so that a new optimizer is compared with tuned baselines without re-running them.

A pack keeps the convergence part of a report: per study (a problem with its options, batch
size, budget and learning-rate grid) and optimizer, the search score of every rate and seed of
the grid and every logged step of the final runs (the chosen rate on the profile's seeds),
each row tagged with the machine that ran it. The file's Parquet metadata (key
``optbench.pack``) holds, as JSON, the format version, the profile's name, seeds and
Moré-Wild tolerance, the studies, the search scores, the version of the fixed targets and,
per machine, its CPU, memory, OS and package versions.

References: what makes a score absolute
---------------------------------------
Every study of a pack has a fixed target, the stored test-accuracy target of its workload
(:mod:`optbench.targets`) where there is one, else Moré and Wild's training-loss target over
the pack's own runs, and *reference steps*: the fewest median steps to that target of any
optimizer in the pack (the study's step budget where none reaches it). A report judged against
a pack uses these targets and divides every optimizer's steps by these reference steps
(:func:`optbench.report.ranking.profile_scores`), so that an optimizer's score depends on its
own runs and the pack alone: adding an optimizer changes no other optimizer's score.

Machines
--------
Steps do not depend on the machine (a run is seeded and single-threaded); wall seconds do.
Packs from several machines or sweeps merge (:func:`merge`); where more than one machine ran
the same optimizer on the same study, the runs of one machine are used (this machine's if it is
one of them, else the first merged), so wall seconds are never pooled across machines.
"""

import dataclasses
import datetime
import json
import os
from collections.abc import Mapping
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import problems, runner, sweep, tables
from .. import targets as stored_targets
from . import ranking, sysinfo
from .profiles import Profile, Study

FORMAT = 1
METADATA_KEY = b"optbench.pack"
PACKS_DIR = "packs"
# what a final run keeps: the runner's record, without the per-run settings kept elsewhere
RUN_COLUMNS = ("problem", "optimizer", "machine", "seed", "lr", *runner.RECORD_COLUMNS)
SEARCH_COLUMNS = ("problem", "optimizer", "machine", "lr", "seed", "score")
JUDGED = "judged"
ON_ACCURACY = "test accuracy >="
ON_LOSS = "training loss <="


@dataclasses.dataclass(frozen=True, eq=False)
class Pack:
    """A baseline pack (see the module docstring). ``runs``: the final runs, one row per
    logged step (:data:`RUN_COLUMNS`; ``problem`` is the study's label); ``search``: one row
    per search run (:data:`SEARCH_COLUMNS`); ``machines``: machine id to its description, in
    the order packs were merged."""

    profile: str
    studies: tuple[Study, ...]
    search_seeds: tuple[int, ...]
    seeds: tuple[int, ...]
    tolerance: float
    targets_version: int
    created: str
    runs: pd.DataFrame
    search: pd.DataFrame
    machines: Mapping[str, Mapping[str, str]]

    @property
    def optimizers(self):
        """The optimizers with runs in the pack, in their first order of appearance."""
        return tuple(dict.fromkeys(self.runs["optimizer"]))

    def study(self, label):
        return next((s for s in self.studies if s.label == label), None)

    def final_log(self, prefer=None):
        """The final runs, of one machine per (study, optimizer): ``prefer`` (a machine id)
        where it ran them, else the first machine of :attr:`machines` that did."""
        order = {machine: i for i, machine in enumerate(self.machines)}
        rank = self.runs["machine"].map(lambda m: -1 if m == prefer else order[m])
        chosen = (
            pd.DataFrame({"problem": self.runs["problem"], "optimizer": self.runs["optimizer"]})
            .assign(rank=rank)
            .groupby(["problem", "optimizer"], sort=False)["rank"]
            .transform("min")
        )
        return self.runs[rank == chosen].reset_index(drop=True)

    def search_scores(self, prefer=None):
        """The search scores, of the machine :meth:`final_log` uses per (study, optimizer)."""
        used = self.final_log(prefer)[["problem", "optimizer", "machine"]].drop_duplicates()
        return self.search.merge(used, on=["problem", "optimizer", "machine"]).reset_index(
            drop=True
        )

    def best(self, prefer=None):
        """Per (study, optimizer): the chosen ``lr``, its mean search score and the study's
        batch size, as a tuned study's ``best`` table."""
        chosen = self.final_log(prefer)[["problem", "optimizer", "lr"]].drop_duplicates()
        scores = self.search_scores(prefer)
        mean = scores.groupby(["problem", "optimizer", "lr"], as_index=False)["score"].mean()
        out = chosen.merge(mean, on=["problem", "optimizer", "lr"], how="left")
        out["batch_size"] = (
            out["problem"].map({s.label: s.batch_size for s in self.studies}).astype(object)
        )
        return out[["problem", "optimizer", "batch_size", "lr", "score"]]

    def profile_for(self, optimizers):
        """A profile of the pack's studies and seeds for ``optimizers``, without lessons or
        throughput: what a report run against the pack runs."""
        return Profile(
            name=f"{self.profile}-vs-baseline",
            description=f"{', '.join(optimizers)} against the {self.profile} baseline pack",
            optimizers=tuple(optimizers),
            studies=self.studies,
            search_seeds=self.search_seeds,
            seeds=self.seeds,
            tolerance=self.tolerance,
        )

    def matches(self, profile):
        """Whether every study of ``profile`` is one of the pack's, with the same grid, seeds
        and tolerance: then the pack's references judge ``profile``'s runs."""
        if (profile.search_seeds, profile.seeds, profile.tolerance) != (
            self.search_seeds,
            self.seeds,
            self.tolerance,
        ):
            return False
        return all(_with_grid(s, profile) in self.studies for s in profile.studies)


def _with_grid(study, profile):
    lrs = study.lrs if study.lrs is not None else profile.lrs
    if lrs is None:
        raise ValueError(
            f"study {study.label!r}: a pack needs an explicit learning-rate grid (the "
            "profile's lrs or the study's), not the per-optimizer default"
        )
    return dataclasses.replace(study, lrs=tuple(float(lr) for lr in lrs))


# --------------------------------------------------------------------------------------------
# machines
# --------------------------------------------------------------------------------------------
MACHINE_ITEMS = ("CPU", "logical CPUs", "memory (GiB)", "OS", "Python", *sysinfo.PACKAGES)


def this_machine():
    """``(id, description)`` of this machine: ``host / CPU / N CPUs`` and a dict of the
    :mod:`.sysinfo` items that decide its speed, with the date and the git commit."""
    items = dict(sysinfo.collect().itertuples(index=False, name=None))
    identifier = f"{items['host']} / {items['CPU']} / {items['logical CPUs']} CPUs"
    description = {key: items[key] for key in ("date (UTC)", *MACHINE_ITEMS, "git commit")}
    return identifier, description


# --------------------------------------------------------------------------------------------
# building, writing, reading
# --------------------------------------------------------------------------------------------
def from_tuned(profile, tuned, machine=None):
    """The pack of ``tuned`` (``{study label: optbench.sweep.TuneResult}``, every study of
    ``profile``), run on ``machine`` (``(id, description)``; default :func:`this_machine`)."""
    identifier, description = machine or this_machine()
    runs, search = [], []
    for study in profile.studies:
        result = tuned[study.label]
        final = result.final.assign(problem=study.label, machine=identifier)
        runs.append(final[list(RUN_COLUMNS)])
        scores = sweep.score_runs(result.search).assign(problem=study.label, machine=identifier)
        search.append(scores[list(SEARCH_COLUMNS)])
    return Pack(
        profile=profile.name,
        studies=tuple(_with_grid(s, profile) for s in profile.studies),
        search_seeds=tuple(profile.search_seeds),
        seeds=tuple(profile.seeds),
        tolerance=float(profile.tolerance),
        targets_version=int(stored_targets.stored()["version"]),
        created=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        runs=_typed_runs(pd.concat(runs, ignore_index=True)),
        search=_typed_search(pd.concat(search, ignore_index=True)),
        machines={identifier: dict(description)},
    )


def _typed_runs(frame):
    frame = frame[list(RUN_COLUMNS)].reset_index(drop=True)
    types = {name: "float64" for name in RUN_COLUMNS[4:]}
    types |= {"problem": str, "optimizer": str, "machine": str, "seed": "int64", "step": "int64"}
    types |= {"epoch": "int64", "examples_seen": "int64", "diverged": bool}
    return frame.astype(types)


def _typed_search(frame):
    frame = frame[list(SEARCH_COLUMNS)].reset_index(drop=True)
    types = {"problem": str, "optimizer": str, "machine": str, "lr": "float64"}
    return frame.astype(types | {"seed": "int64", "score": "float64"})


def _study_json(study):
    return {
        "problem": study.problem,
        "options": dict(study.options),
        "batch_size": study.batch_size,
        "epochs": study.epochs,
        "steps": study.steps,
        "log_every": study.log_every,
        "target": study.target,
        "lrs": list(study.lrs),
    }


def _study_from_json(entry):
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in entry["options"].items()}
    return Study(
        entry["problem"],
        options,
        batch_size=entry["batch_size"],
        epochs=entry["epochs"],
        steps=entry["steps"],
        log_every=entry["log_every"],
        target=entry["target"],
        lrs=tuple(float(lr) for lr in entry["lrs"]),
    )


def write(pack, path):
    """Write ``pack`` to ``path`` (a ``.parquet`` file), atomically."""
    if not os.fspath(path).endswith(".parquet"):
        raise ValueError(f"{os.fspath(path)!r}: a pack's file name must end in .parquet")
    metadata = {
        "format": FORMAT,
        "profile": pack.profile,
        "created": pack.created,
        "studies": [_study_json(s) for s in pack.studies],
        "search_seeds": list(pack.search_seeds),
        "seeds": list(pack.seeds),
        "tolerance": pack.tolerance,
        "targets_version": pack.targets_version,
        "machines": [{"id": k, **v} for k, v in pack.machines.items()],
        "search": pack.search.to_dict(orient="list"),
    }
    table = pa.Table.from_pandas(pack.runs, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(metadata).encode()}
    )
    tables.atomic_write(
        path, lambda file: pq.write_table(table, file, compression="zstd"), mode="wb"
    )


def read(path):
    """The pack in ``path``; ``ValueError`` naming the file when it is not a readable pack of
    this format."""
    path = os.fspath(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as error:
        raise ValueError(f"baseline pack {path!r}: cannot read it ({error})") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ValueError(f"baseline pack {path!r}: a Parquet file, but not an optbench pack")
    try:
        meta = json.loads(raw)
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, this optbench reads {FORMAT}")
        runs = table.to_pandas()
        missing = [c for c in RUN_COLUMNS if c not in runs.columns]
        if missing:
            raise ValueError(f"its runs lack the column(s) {', '.join(missing)}")
        pack = Pack(
            profile=str(meta["profile"]),
            studies=tuple(_study_from_json(s) for s in meta["studies"]),
            search_seeds=tuple(int(s) for s in meta["search_seeds"]),
            seeds=tuple(int(s) for s in meta["seeds"]),
            tolerance=float(meta["tolerance"]),
            targets_version=int(meta["targets_version"]),
            created=str(meta["created"]),
            runs=_typed_runs(runs),
            search=_typed_search(pd.DataFrame(meta["search"])),
            machines={m.pop("id"): m for m in meta["machines"]},
        )
    except (KeyError, TypeError, ValueError) as error:
        text = f"missing {error}" if isinstance(error, KeyError) else str(error)
        raise ValueError(f"baseline pack {path!r}: {text}") from None
    _check_consistent(pack, f"baseline pack {path!r}")
    return pack


def _check_consistent(pack, name):
    labels = {s.label for s in pack.studies}
    for frame, what in ((pack.runs, "runs"), (pack.search, "search scores")):
        unknown = sorted(set(frame["problem"]) - labels)
        if unknown:
            raise ValueError(f"{name}: {what} of {unknown[0]!r}, which is none of its studies")
        machines = sorted(set(frame["machine"]) - set(pack.machines))
        if machines:
            raise ValueError(f"{name}: {what} from machine {machines[0]!r}, not described")


def shipped_path(profile_name):
    """The path of the pack shipped in the package for ``profile_name``, or None."""
    entry = resources.files("optbench") / "data" / PACKS_DIR / f"{profile_name}.parquet"
    return os.fspath(entry) if entry.is_file() else None


def shipped(profile_name):
    """The pack shipped for ``profile_name`` (see :func:`shipped_path`), or None."""
    path = shipped_path(profile_name)
    return None if path is None else read(path)


# --------------------------------------------------------------------------------------------
# merging
# --------------------------------------------------------------------------------------------
def merge(packs):
    """One pack of ``packs`` (two or more): their studies (equal where two share a label),
    their runs and search scores, their machines in order. The seeds and tolerance must agree
    (the fixed targets are the package's, whatever version a pack was made with); an
    optimizer's runs on a study from one machine may come from one pack only."""
    packs = list(packs)
    if len(packs) < 2:
        raise ValueError(f"merge needs two packs or more, got {len(packs)}")
    first = packs[0]
    for i, pack in enumerate(packs[1:], start=2):
        for field in ("search_seeds", "seeds", "tolerance"):
            if getattr(pack, field) != getattr(first, field):
                raise ValueError(
                    f"pack {i} has {field} {getattr(pack, field)!r}, pack 1 "
                    f"{getattr(first, field)!r}: packs of different protocols do not merge"
                )
    studies = {}
    for i, pack in enumerate(packs, start=1):
        for study in pack.studies:
            if studies.setdefault(study.label, study) != study:
                raise ValueError(
                    f"pack {i} defines study {study.label!r} differently (budget, batch size, "
                    "log interval or grid) from an earlier pack"
                )
    seen = {}
    for i, pack in enumerate(packs, start=1):
        keys = pack.runs[["machine", "problem", "optimizer"]].drop_duplicates()
        for key in keys.itertuples(index=False, name=None):
            if key in seen:
                raise ValueError(
                    f"packs {seen[key]} and {i} both hold {key[2]} on {key[1]!r} from machine "
                    f"{key[0]!r}: keep one of them"
                )
            seen[key] = i
    machines = {}
    for pack in packs:
        for key, value in pack.machines.items():
            machines.setdefault(key, value)
    return Pack(
        profile="+".join(dict.fromkeys(p.profile for p in packs)),
        studies=tuple(studies.values()),
        search_seeds=first.search_seeds,
        seeds=first.seeds,
        tolerance=first.tolerance,
        targets_version=max(p.targets_version for p in packs),
        created=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        runs=pd.concat([p.runs for p in packs], ignore_index=True),
        search=pd.concat([p.search for p in packs], ignore_index=True),
        machines=machines,
    )


# --------------------------------------------------------------------------------------------
# targets and references
# --------------------------------------------------------------------------------------------
def fixed_targets(studies):
    """``{study label: target}``: the stored test-accuracy target (:mod:`optbench.targets`)
    of every study that is one of its workloads and sets no target of its own."""
    found = {}
    for study in studies:
        workload = stored_targets.Workload(
            study.problem,
            dict(study.options),
            study.batch_size,
            study.epochs,
            study.steps,
            metric="test_accuracy",
        )
        value = stored_targets.target_of(workload)
        if value is not None and study.target is None:
            found[study.label] = value
    return found


def judged(log, fixed):
    """``log`` with the lower-is-better column :data:`JUDGED`: minus the test accuracy on the
    studies of ``fixed`` (labels), the full-batch training loss on the others."""
    on_accuracy = log["problem"].isin(list(fixed))
    return log.assign(
        **{JUDGED: np.where(on_accuracy, -log["test_accuracy"], log["full_train_loss"])}
    )


def study_targets(studies, log, tolerance):
    """A frame indexed by study label: ``judged_on`` (:data:`ON_ACCURACY` or
    :data:`ON_LOSS`), ``target`` (the accuracy or loss to reach) and ``judged_target`` (the
    same in :data:`JUDGED` units). Accuracy: the stored target; loss: the study's own target,
    else Moré and Wild's over ``log``."""
    fixed = fixed_targets(studies)
    rows = {}
    loss_studies = [s for s in studies if s.label not in fixed]
    more_wild = pd.Series(dtype=float)
    plain = log[log["problem"].isin([s.label for s in loss_studies if s.target is None])]
    if len(plain):
        more_wild = ranking.more_wild_targets(plain, tol=tolerance, metric="full_train_loss")
    for study in studies:
        if study.label in fixed:
            value = fixed[study.label]
            rows[study.label] = (ON_ACCURACY, value, -value)
        else:
            value = study.target if study.target is not None else more_wild.get(study.label)
            if value is None:
                continue  # no runs of it in log
            rows[study.label] = (ON_LOSS, float(value), float(value))
    return pd.DataFrame.from_dict(
        rows, orient="index", columns=["judged_on", "target", "judged_target"]
    )


def budget_steps(study):
    """The optimizer steps of a run of ``study``: its ``steps``, or its epochs times the
    training set's batches."""
    if study.steps is not None:
        return int(study.steps)
    problem = problems.make(study.problem, **dict(study.options))
    return int(study.epochs) * problem.steps_per_epoch(study.batch_size)


def references(pack, prefer=None):
    """Per study of ``pack``: :func:`study_targets` over its runs, and ``reference_steps``
    with ``reference_optimizer``, the fewest median steps to the target of any of its
    optimizers (the study's :func:`budget_steps`, optimizer ``"budget"``, where none
    reaches it)."""
    log = pack.final_log(prefer)
    found = study_targets(pack.studies, log, pack.tolerance)
    fixed = [label for label, row in found.iterrows() if row["judged_on"] == ON_ACCURACY]
    reach = ranking.first_reach(judged(log, fixed), found["judged_target"], metric=JUDGED)
    medians = reach.groupby(["problem", "optimizer"])["steps"].median().reset_index()
    steps, names = {}, {}
    for study in pack.studies:
        rows = medians[(medians["problem"] == study.label) & np.isfinite(medians["steps"])]
        if len(rows):
            best = rows.sort_values(["steps", "optimizer"], kind="stable").iloc[0]
            steps[study.label], names[study.label] = float(best["steps"]), best["optimizer"]
        else:
            steps[study.label], names[study.label] = float(budget_steps(study)), "budget"
    found["reference_steps"] = pd.Series(steps)
    found["reference_optimizer"] = pd.Series(names)
    return found


def ranking_table(pack, prefer=None):
    """The pack's own ranking (:func:`optbench.report.ranking.ranking`) on its references."""
    found = references(pack, prefer)
    fixed = [label for label, row in found.iterrows() if row["judged_on"] == ON_ACCURACY]
    log = judged(pack.final_log(prefer), fixed)
    return ranking.ranking(log, found["judged_target"], metric=JUDGED)


def scores(pack, prefer=None):
    """The absolute profile score of each of the pack's optimizers (steps to target over its
    reference steps, :func:`optbench.report.ranking.profile_scores`): what a report against
    the pack gives them, whatever else it runs."""
    table = ranking_table(pack, prefer)
    costs = table.rename(columns={"steps_to_target": "cost"})[["problem", "optimizer", "cost"]]
    return ranking.profile_scores(costs, reference=references(pack, prefer)["reference_steps"])
