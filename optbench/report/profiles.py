"""What a report measures: the ``tiny`` (tests), ``quick`` (under 5 minutes on 2 cores) and
``full`` (overnight) profiles.

A profile lists the optimizers, the *studies* (one tuned comparison per problem: learning
rates searched on ``search_seeds``, the best re-run on ``seeds``), and the settings of the
lessons drawn from them: 2-D trajectories, batch sizes, normalization, per-layer gradient
norms, and the throughput measurement. Learning-rate grids are the sweep's default (each
optimizer's registry ``lr`` times ``10**k``, ``k`` in half-decades from -2 to 1) unless a
profile gives ``lrs``, which every optimizer then shares.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .. import registry

# the optimizers that take every array of the problems: Muon, for matrices only, is there as
# Muon with AdamW on the other arrays (muon_adamw)
ALL_OPTIMIZERS = tuple(spec.name for spec in registry.OPTIMIZERS if spec.ndims is None)
# One grid for every optimizer, half-decades from 1e-5 to 1: wide enough for sign-based Lion
# (registry lr 1e-4, yet 1e-2 on the 2-D problems) and for SGD, which the sweep's default grid
# (each registry lr times 10**-2 .. 10) leaves at the edge.
WIDE_LRS = tuple(float(f"{10.0 ** (k / 2):.3g}") for k in range(-10, 1))


def _frozen(mapping):
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Study:
    """One problem as the runs see it: its options, batch size and budget (``epochs`` or
    ``steps``), logging interval, the target loss of the ranking (``None``: Moré and Wild's
    target, see :mod:`.ranking`), and the learning rates tuned on it (``None``: the
    profile's)."""

    problem: str
    options: Mapping = field(default_factory=dict)
    batch_size: int | str = 32
    epochs: int | None = None
    steps: int | None = None
    log_every: int = 1
    target: float | None = None
    lrs: tuple[float, ...] | None = None

    def __post_init__(self):
        from .. import problems

        defaults = problems.get(self.problem).options
        unknown = sorted(set(self.options) - set(defaults))
        if unknown:
            raise ValueError(f"{self.problem} has no option {unknown[0]!r}")
        # options at their defaults are dropped: equal runs get equal sweep cells, and reuse them
        changed = {k: v for k, v in self.options.items() if v != defaults[k].default}
        object.__setattr__(self, "options", _frozen(changed))

    @property
    def label(self):
        """The problem's name with its non-default options, e.g. ``digits_mlp norm=batch``."""
        extra = " ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.problem} {extra}".strip()

    @property
    def key(self):
        """A file-name-safe id: the label with every other character replaced by ``-``."""
        return "".join(c if c.isalnum() or c in "._" else "-" for c in self.label.replace(" ", "_"))

    def grid_arguments(self):
        """Keyword arguments of :class:`optbench.sweep.Grid` for this study."""
        arguments = {
            "problems": (self.problem,),
            "batch_sizes": (self.batch_size,),
            "epochs": self.epochs,
            "steps": self.steps,
            "log_every": self.log_every,
        }
        if self.options:
            arguments["problem_options"] = {self.problem: dict(self.options)}
        return arguments


@dataclass(frozen=True)
class Throughput:
    """Arguments of :func:`optbench.throughput.measure`: parameter counts (elements), dtypes,
    layouts (``"flat"``, ``"100 arrays"``), timing rounds and the least duration of a timed
    batch (seconds), whether to time the peers (NumPy reference, in-place NumPy, torch), and
    the (rows, features) inputs of the normalization kernels (empty: none)."""

    sizes: tuple[int, ...]
    dtypes: tuple[str, ...] = ("float32",)
    layouts: tuple[str, ...] = ("flat",)
    repeats: int = 5
    min_batch_seconds: float = 0.02
    peers: bool = True
    norms: bool = True
    norm_shapes: tuple[tuple[int, int], ...] = ((32, 1024), (512, 768))


@dataclass(frozen=True)
class Grokking:
    """Runs of ``modular_addition`` at one setting, each optimizer with its options: train and
    test accuracy against steps, where weight decay decides whether the network generalizes
    (see :class:`optbench.problems.transformer.ModularAddition`). ``runs``: (label, optimizer,
    options) triples, all at ``lr``."""

    study: Study
    lr: float
    runs: tuple[tuple[str, str, Mapping], ...]
    seeds: tuple[int, ...] = (0,)


# Adam's and AdamW's defaults but beta2 = 0.98, batch 512, lr 1e-3 (the README's setting)
_GROKKING_BETAS = (0.9, 0.98)
GROKKING = Grokking(
    study=Study("modular_addition", batch_size=512, steps=6000),
    lr=1e-3,
    runs=(
        ("AdamW, weight decay 1", "adamw", {"betas": _GROKKING_BETAS, "weight_decay": 1.0}),
        ("Adam, no weight decay", "adam", {"betas": _GROKKING_BETAS}),
    ),
)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    optimizers: tuple[str, ...]
    studies: tuple[Study, ...]
    lrs: tuple[float, ...] | None = None
    search_seeds: tuple[int, ...] = (0,)
    seeds: tuple[int, ...] = (1, 2, 3)
    tolerance: float = 1e-2
    # 2-D problems (each must be a study) drawn on their contour plot; one optimizer's runs at
    # its tuned lr times each factor show too-low and too-high learning rates
    trajectory_problems: tuple[str, ...] = ()
    trajectory_optimizer: str = "sgd"
    trajectory_lr_factors: tuple[float, ...] = (0.1, 1.0, 4.0)
    # batch sizes at a fixed lr (the tuned one where the problem is a study) and epoch budget
    batch_study: Study | None = None
    batch_sizes: tuple = ()
    batch_optimizers: tuple[str, ...] = ("sgd", "adam")
    # normalization: the study's problem with each norm option, each one tuned
    norm_study: Study | None = None
    norms: tuple[str, ...] = ("none", "batch", "layer")
    norm_optimizers: tuple[str, ...] = ("sgd", "adam")
    # per-layer gradient norms of deep_sigmoid_mlp against its cures, at one fixed lr
    grad_study: Study | None = None
    grad_variants: tuple[tuple[str, Mapping], ...] = ()
    grad_optimizer: str = "sgd"
    grad_lr: float = 0.1
    throughput: Throughput | None = None
    grokking: Grokking | None = None

    def study(self, problem):
        """The study of ``problem`` (by name), or ``None``."""
        return next((s for s in self.studies if s.problem == problem), None)


_GRAD_VARIANTS = (
    ("sigmoid, Glorot", {}),
    ("ReLU, He", {"activation": "relu", "init": "he"}),
    ("sigmoid, Glorot, BatchNorm", {"norm": "batch"}),
    ("sigmoid, Glorot, LayerNorm", {"norm": "layer"}),
)

TINY = Profile(
    name="tiny",
    description="a smoke test of every section in seconds (the test suite's profile)",
    optimizers=("sgd", "adam"),
    studies=(
        Study("quadratic", steps=60),
        Study("rosenbrock", steps=80),
        Study("logistic_regression", epochs=2),
    ),
    lrs=(1e-3, 1e-2, 1e-1),
    search_seeds=(0,),
    seeds=(1, 2),
    trajectory_problems=("quadratic",),
    batch_study=Study("logistic_regression", epochs=1),
    batch_sizes=(16, 128),
    batch_optimizers=("sgd",),
    norm_study=Study("digits_mlp", {"hidden": "16"}, epochs=1),
    norms=("none", "batch"),
    norm_optimizers=("adam",),
    grad_study=Study("deep_sigmoid_mlp", {"depth": 4, "width": 8}, steps=5),
    grad_variants=_GRAD_VARIANTS[:2],
    throughput=Throughput(
        sizes=(1_000,), repeats=3, min_batch_seconds=0.002, norm_shapes=((16, 64),)
    ),
    grokking=Grokking(
        study=Study(
            "modular_addition",
            {"modulus": 11, "d_model": 8, "heads": 2, "d_mlp": 16},
            batch_size=16,
            steps=24,
        ),
        lr=1e-2,
        runs=GROKKING.runs,
    ),
)

QUICK = Profile(
    name="quick",
    description="the default suite cut to run in under 5 minutes on 2 cores",
    # today's optimizers against Adam, AdamW and SGD
    optimizers=(
        "sgd",
        "adam",
        "adamw",
        "schedule_free_adamw",
        "adopt",
        "lamb",
        "adafactor",
        "muon_adamw",
    ),
    studies=(
        Study("quadratic", steps=300),
        Study("rosenbrock", steps=1000),
        Study("saddle", steps=300),
        Study("logistic_regression", epochs=5),
        Study("digits_mlp", epochs=5),
        # a CNN in the budget: 3 epochs, 4 rates a decade apart
        Study("mnist1d_cnn", epochs=3, lrs=(1e-4, 1e-3, 1e-2, 1e-1)),
    ),
    lrs=WIDE_LRS,
    search_seeds=(0,),
    seeds=(1, 2, 3),
    trajectory_problems=("quadratic", "rosenbrock", "saddle"),
    batch_study=Study("logistic_regression", epochs=5),
    batch_sizes=(8, 32, 128, "full"),
    norm_study=Study("digits_mlp", epochs=5),
    grad_study=Study("deep_sigmoid_mlp", steps=100, log_every=5),
    grad_variants=_GRAD_VARIANTS,
    # the sizes of optbench.throughput's quick measurement
    throughput=Throughput(sizes=(1_000, 100_000, 1_000_000), repeats=3, min_batch_seconds=0.005),
)

FULL = Profile(
    name="full",
    description="every optimizer and problem, more seeds and longer runs (overnight)",
    optimizers=ALL_OPTIMIZERS,
    studies=(
        Study("quadratic", {"kappa": 100.0}, steps=1000),
        Study("noisy_quadratic", epochs=20),
        Study("rosenbrock", steps=5000, log_every=5),
        Study("beale", steps=2000),
        Study("saddle", steps=500),
        Study("logistic_regression", epochs=30),
        Study("xor_mlp", batch_size=4, steps=2000, log_every=5),
        Study("digits_mlp", epochs=30),
        Study("deep_sigmoid_mlp", epochs=30),
        Study("mnist1d_mlp", epochs=30),
        Study("mnist1d_cnn", epochs=30),
    ),
    lrs=WIDE_LRS,
    search_seeds=(0, 1),
    seeds=(2, 3, 4, 5, 6),
    trajectory_problems=("quadratic", "rosenbrock", "beale", "saddle"),
    batch_study=Study("digits_mlp", epochs=20),
    batch_sizes=(8, 32, 128, 512, "full"),
    norm_study=Study("digits_mlp", epochs=30),
    norm_optimizers=("sgd", "adam", "lion"),
    grad_study=Study("deep_sigmoid_mlp", steps=500, log_every=10),
    grad_variants=_GRAD_VARIANTS,
    throughput=Throughput(
        sizes=(
            1_000,
            3_000,
            10_000,
            30_000,
            100_000,
            300_000,
            1_000_000,
            3_000_000,
            10_000_000,
            30_000_000,
        ),
        dtypes=("float32", "float64"),
        layouts=("flat", "100 arrays"),
        repeats=7,
        norm_shapes=((32, 1024), (256, 1024), (512, 768), (4096, 1024), (4096, 4096)),
    ),
    grokking=GROKKING,
)

PROFILES = {profile.name: profile for profile in (TINY, QUICK, FULL)}


def get(name):
    """The profile called ``name``; ``ValueError`` lists the choices."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}") from None
