"""Running a profile's training runs, resumably, under ``<report>/runs/``.

Tuned studies go through :func:`optbench.sweep.tune` (search on the profile's search seeds,
re-run of each optimizer's best learning rate on its seeds), fixed-lr grids through
:func:`optbench.sweep.sweep`; both keep every finished run as a cell file and skip it when the
report is built again. Runs that record extra columns (2-D parameter trajectories, per-layer
gradient norms), which a sweep grid cannot ask for, go through :func:`cached_runs`: the same
cell specs, ids and files, run one by one with :func:`optbench.sweep.run_cell`.
"""

import os
import sys

import pandas as pd
from tqdm import tqdm

from .. import sweep, tables

RUNS_DIR = "runs"


def tune_study(study, optimizers, profile, out_dir, *, jobs=1, progress=True):
    """The :class:`optbench.sweep.TuneResult` of ``study`` for ``optimizers``, its cells under
    ``out_dir/runs/<study.key>`` (shared by every section that tunes the same study)."""
    grid = sweep.Grid(
        optimizers=tuple(optimizers),
        lrs=study.lrs if study.lrs is not None else profile.lrs,
        seeds=profile.search_seeds,
        **study.grid_arguments(),
    )
    if progress:
        print(f"tuning {study.label}: {', '.join(optimizers)}", file=sys.stderr)
    return sweep.tune(
        grid,
        seeds=profile.seeds,
        out=os.path.join(out_dir, RUNS_DIR, study.key),
        jobs=jobs,
        progress=progress,
    )


def tune_profile(profile, out_dir, *, jobs=1, progress=True):
    """``{study label: TuneResult}`` of every study of ``profile`` for its optimizers (see
    :func:`tune_study`)."""
    return {
        study.label: tune_study(
            study, profile.optimizers, profile, out_dir, jobs=jobs, progress=progress
        )
        for study in profile.studies
    }


def fixed_lr_runs(study, optimizer, lr, batch_sizes, seeds, out_dir, *, jobs=1, progress=True):
    """Runs of ``optimizer`` at ``lr`` on ``study`` for each batch size and seed."""
    arguments = study.grid_arguments()
    arguments["batch_sizes"] = tuple(batch_sizes)
    grid = sweep.Grid(optimizers=(optimizer,), lrs=(lr,), seeds=tuple(seeds), **arguments)
    if progress:
        print(f"batch sizes on {study.label}: {optimizer} at lr={lr:g}", file=sys.stderr)
    out = os.path.join(out_dir, RUNS_DIR, f"{study.key}-batch-sizes")
    return sweep.sweep(grid, out=out, jobs=jobs, progress=progress)


def run_spec(study, optimizer, lr, seed, optimizer_options=None, **record):
    """The cell spec of one run of ``optimizer`` (with ``optimizer_options``) at ``lr`` on
    ``study`` with ``seed``; ``record`` adds runner flags (``record_params=True``,
    ``record_layer_grad_norms=True``)."""
    return {
        "problem": study.problem,
        "optimizer": optimizer,
        "lr": float(lr),
        "batch_size": study.batch_size,
        "seed": int(seed),
        "epochs": study.epochs,
        "steps": study.steps,
        "optimizer_options": dict(optimizer_options or {}),
        "problem_options": dict(study.options),
        "schedule": None,
        "schedule_options": {},
        "log_every": study.log_every,
        "divergence_bound": None,
        "early_stopping": None,
        "version": sweep.RECORD_VERSION,
        **record,
    }


def cached_runs(specs, out_dir, name, *, progress=True):
    """The records of ``specs`` (see :func:`run_spec`) concatenated in order, with a ``run``
    column holding each spec's position; each run once and kept as
    ``out_dir/runs/<name>/cells/<id>.parquet``."""
    cell_dir = os.path.join(out_dir, RUNS_DIR, name, "cells")
    os.makedirs(cell_dir, exist_ok=True)
    frames = []
    with tqdm(
        total=len(specs), desc=name, unit="run", disable=not progress, file=sys.stderr
    ) as bar:
        for position, spec in enumerate(specs):
            identifier = sweep.cell_id(spec)
            path = os.path.join(cell_dir, f"{identifier}.parquet")
            frame = sweep.read_cell(path, identifier)
            if frame is None:
                frame = sweep.run_cell(spec)
                tables.write_table(frame, path)
            frames.append(frame.assign(run=position))
            bar.update()
    return pd.concat(frames, ignore_index=True)
