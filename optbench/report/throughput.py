"""The throughput part of a report: kernel speed against parameter count with the measured
memory roofline, side-by-side ratios against peers, and each optimizer's per-step cost for the
ranking.

The measurement itself is :func:`optbench.throughput.measure` (interleaved timing rounds,
the roofline of each access pattern measured beside every size, the peers in the same
process); its table is
brought to the columns of :mod:`optbench.report.speed_table` (:func:`normalize`).
"""

import dataclasses
import os
import sys

import numba
import numpy as np
import pandas as pd
from tqdm import tqdm

from .. import peers, problems, sweep, tables
from .. import throughput as measurement
from . import compare, figures
from .speed_table import normalize

OURS = "optbench"
CACHE_FILES = ("throughput.parquet", "problem-sizes.parquet")


class Speeds:
    """A profile's throughput measurement: ``table`` (the sizes of the throughput figures,
    with peers and roofline) and ``problem_table`` (optbench only, at each study problem's
    parameter count and dtype, one flat array: the ranking's per-step costs)."""

    def __init__(self, table, problem_table):
        self.table = normalize(table)
        self.problem_table = normalize(problem_table)


def problem_sizes(profile):
    """``{study label: (parameter count, dtype name)}`` of the profile's studies."""
    sizes = {}
    for study in profile.studies:
        params = problems.make(study.problem, **dict(study.options)).initial_params()
        sizes[study.label] = (int(sum(p.size for p in params)), str(params[0].dtype))
    return sizes


def measure_profile(profile, *, threads=None, progress=True, cache_dir=None):
    """Run :func:`optbench.throughput.measure` as ``profile.throughput`` says, for the
    profile's optimizers (at ``threads`` Numba threads, default Numba's current count), and
    once more, optbench alone, at the study problems' sizes. Returns :class:`Speeds`.

    With ``cache_dir``, the two raw tables are kept in ``cache_dir/<id>/`` (``id``: a hash of
    everything measured and the thread count) and reused by the next call that measures the
    same: delete the directory to measure again.
    """
    spec = profile.throughput
    threads = numba.get_num_threads() if threads is None else threads
    key = {
        "method": measurement.METHOD,
        "spec": dataclasses.asdict(spec),
        "optimizers": list(profile.optimizers),
        "sizes": problem_sizes(profile),
        "threads": threads,
    }
    directory = None if cache_dir is None else os.path.join(cache_dir, sweep.cell_id(key))
    paths = None if directory is None else [os.path.join(directory, n) for n in CACHE_FILES]
    if paths is not None and all(os.path.exists(p) for p in paths):
        return Speeds(*(pd.read_parquet(p) for p in paths))
    norms = spec.norms and bool(spec.norm_shapes)
    groups = len(profile.optimizers) * len(spec.sizes) * len(spec.dtypes)
    groups += len(peers.NORMS) * len(spec.norm_shapes) * len(spec.dtypes) if norms else 0
    by_dtype = {}
    for n, dtype in problem_sizes(profile).values():
        by_dtype.setdefault(dtype, set()).add(n)
    groups += sum(len(sizes) for sizes in by_dtype.values()) * len(profile.optimizers)
    common = {
        "threads": threads,
        "optimizers": profile.optimizers,
        "latency": False,
        "repeats": spec.repeats,
        "min_batch_seconds": spec.min_batch_seconds,
    }
    with tqdm(
        total=groups, desc="throughput", unit="group", disable=not progress, file=sys.stderr
    ) as bar:

        def advance(message):
            bar.set_postfix_str(message.split("] ", 1)[-1], refresh=False)
            bar.update()

        table = measurement.measure(
            sizes=spec.sizes,
            dtypes=spec.dtypes,
            layouts=spec.layouts,
            norms=norms,
            norm_shapes=spec.norm_shapes or None,
            training=False,
            peer_names=measurement.PEERS if spec.peers else (),
            progress=advance,
            **common,
        )
        problem_tables = [
            measurement.measure(
                sizes=sorted(sizes),
                dtypes=(dtype,),
                layouts=("flat",),
                norms=False,
                training=False,
                peer_names=(),
                stream=(),
                progress=advance,
                **common,
            )
            for dtype, sizes in by_dtype.items()
        ]
    problem_table = pd.concat(problem_tables, ignore_index=True)
    if paths is not None:
        for frame, path in zip((table, problem_table), paths, strict=True):
            tables.write_table(frame, path)
    return Speeds(table, problem_table)


def step_cost(speeds, sizes, optimizers):
    """Seconds per optimizer step of the optbench kernels at each problem's parameter count:
    a Series indexed by (problem, optimizer).

    ``speeds`` is a normalized table (:attr:`Speeds.problem_table`), ``sizes`` maps problem to
    ``(parameter count, dtype)``. The time at a measured count is the measurement; between
    counts it is interpolated linearly in log(time) against log(count), and outside them it
    is the nearest measured time (below the smallest size a step costs its fixed overhead).
    """
    ours = normalize(speeds)
    ours = ours[
        (ours["kind"] == "optimizer")
        & (ours["implementation"] == OURS)
        & (ours["layout"] == "flat")
    ]
    out = {}
    for optimizer in optimizers:
        for problem, (n, dtype) in sizes.items():
            rows = ours[(ours["kernel"] == optimizer) & (ours["dtype"] == dtype)]
            rows = rows.groupby("n_elements")["seconds"].median().sort_index()
            if rows.empty:
                continue
            log_n = np.log(rows.index.to_numpy(dtype=float))
            log_t = np.log(rows.to_numpy(dtype=float))
            out[problem, optimizer] = float(np.exp(np.interp(np.log(max(n, 1)), log_n, log_t)))
    index = pd.MultiIndex.from_tuples(list(out), names=["problem", "optimizer"])
    return pd.Series(list(out.values()), index=index, dtype=float)


def speed_figure(speeds):
    """Two panels against parameter count (log): elements per second and GB/s of every
    optbench optimizer kernel (median, IQR band), the measured roofline dashed on the GB/s
    panel."""
    table = normalize(speeds)
    ours = table[
        (table["kind"] == "optimizer")
        & (table["implementation"] == OURS)
        & (table["layout"] == "flat")
    ]
    fig, axes = figures.new_figure(1, 2, width=10.0, height=4.0)
    palette = figures.colors(list(dict.fromkeys(ours["kernel"])))
    for kernel, rows in ours.groupby("kernel", sort=False):
        rows = rows.sort_values("n_elements")
        n = rows["n_elements"].to_numpy(dtype=float)
        for ax, column in ((axes[0, 0], "elements_per_s"), (axes[0, 1], "gb_per_s")):
            scale = rows[column] * rows["seconds"]  # elements or gigabytes per step
            ax.plot(n, rows[column], marker=".", color=palette[kernel], label=kernel)
            ax.fill_between(
                n,
                scale / rows["seconds_q75"],
                scale / rows["seconds_q25"],
                color=palette[kernel],
                alpha=0.15,
                linewidth=0,
            )
    roof = ours.groupby("n_elements")["roofline_gb_per_s"].median().sort_index()
    axes[0, 1].plot(roof.index, roof.to_numpy(), "k--", label="roofline (measured)")
    for ax, label in ((axes[0, 0], "elements per second"), (axes[0, 1], "GB/s")):
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel(label)
    axes[0, 0].set_yscale("log")
    figures.legend_outside(fig, axes[0, 1], "outside lower center", ncols=7)
    return fig


def peer_ratios(speeds, kind="optimizer"):
    """Side by side: per (kernel, dtype, n_elements, layout, threads), optbench's median seconds and
    each peer's median seconds over optbench's (a ratio above 1: optbench is faster), with
    the peer's ratio range from the interquartile ranges (``<peer> low``/``<peer> high``)."""
    table = normalize(speeds)
    table = table[table["kind"] == kind]
    keys = ["kernel", "dtype", "n_elements", "layout", "threads"]
    ours = table[table["implementation"] == OURS].set_index(keys)
    out = ours[["seconds"]].rename(columns={"seconds": "optbench s"})
    for peer in [p for p in dict.fromkeys(table["implementation"]) if p != OURS]:
        theirs = table[table["implementation"] == peer].set_index(keys).reindex(ours.index)
        out[f"{peer} x"] = theirs["seconds"] / ours["seconds"]
        out[f"{peer} low"] = theirs["seconds_q25"] / ours["seconds_q75"]
        out[f"{peer} high"] = theirs["seconds_q75"] / ours["seconds_q25"]
    return out.reset_index()


def ratio_figure(ratios, kind):
    """Median time ratio peer/optbench against element count, one panel per peer, one line
    per kernel (optimizers: one flat array); the dotted line at 1 is parity (above: optbench
    is faster)."""
    peer_names = [c[:-2] for c in ratios.columns if c.endswith(" x")]
    panels = max(1, len(peer_names))
    ncols = min(3, panels)
    nrows = -(-panels // ncols)
    fig, axes = figures.new_figure(nrows, ncols, width=3.6 * ncols)
    if kind == "optimizer":
        ratios = ratios[ratios["layout"] == "flat"]
    kernels = list(dict.fromkeys(ratios["kernel"]))
    palette = figures.colors(kernels) if kind == "optimizer" else None
    for ax, peer in zip(axes.flat, peer_names, strict=False):
        for kernel, rows in ratios.groupby("kernel", sort=False):
            rows = rows.sort_values("n_elements")
            colour = palette[kernel] if palette else figures.color(kernel, kernels)
            ax.plot(rows["n_elements"], rows[f"{peer} x"], marker=".", color=colour, label=kernel)
        ax.axhline(1.0, color="black", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{peer} / optbench")
        ax.set_xlabel("elements")
        ax.set_ylabel("time ratio (above 1: optbench faster)")
    for ax in axes.flat[panels:]:
        ax.set_visible(False)
    figures.legend_outside(fig, axes[0, 0], "outside lower center", ncols=min(len(kernels), 6))
    return fig


def sections(report, speeds):
    """Add the throughput section of ``speeds`` (:class:`Speeds`) to ``report`` (a
    :class:`.build.Report`)."""
    table = speeds.table
    section = report.section("Throughput")
    threads = ", ".join(str(t) for t in sorted(table["threads"].unique()))
    report.text(
        section,
        "Time per optimizer step of each fused kernel (median and IQR over interleaved timing "
        f"repeats, Numba threads: {threads}), as elements and bytes per second: the bytes a "
        "step must move (each parameter, gradient and state array read once, each updated "
        "array written once) over the time. The dashed roofline is the rate of a STREAM-style "
        "kernel with the same arrays read and updated, at the same size, timed in the same "
        "rounds (the better of serial and parallel in each). The measurement is kept under "
        "`runs/throughput/` and reused by later builds; delete it to measure "
        "again.",
    )
    report.figure(
        section,
        "throughput",
        speed_figure(table),
        "Elements per second and GB/s against parameter count, per optimizer, with the "
        "measured memory roofline.",
        table,
    )
    report.measurements.append(compare.throughput_measurements(table))
    for kind, title in (("optimizer", "optimizers"), ("norm", "normalization kernels")):
        subset = table[table["kind"] == kind]
        if subset.empty or set(subset["implementation"]) == {OURS}:
            continue
        ratios = peer_ratios(table, kind)
        report.figure(
            section,
            f"peer-ratios-{kind}",
            ratio_figure(ratios, kind),
            f"Time of each peer over optbench's for the {title}, measured in the same run.",
            ratios,
        )
        shown = ratios[[c for c in ratios.columns if not c.endswith((" low", " high"))]]
        report.table(
            section,
            f"peer-table-{kind}",
            shown,
            f"Peers side by side ({title}): optbench's median seconds per step and each peer's "
            "time over it (above 1: optbench is faster); the interquartile ranges of the "
            f"ratios are in the data file `data/peer-ratios-{kind}.csv`.",
        )
