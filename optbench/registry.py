"""The one table of optimizers: tests, benchmarks, the CLI and the reports iterate over it.

Adding an optimizer means a kernel in ``kernels/optimizers.py``, a reference in
``reference/optimizers.py``, a class in ``optim.py`` and one :class:`OptimizerInfo` here.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import optim
from .reference import optimizers as reference


@dataclass(frozen=True)
class OptimizerInfo:
    """How to build, check and benchmark one optimizer.

    name : lower-case name used on the command line and in result tables.
    cls : the :class:`optbench.optim.Optimizer` subclass.
    reference : ``reference(param, grad, state, step, **options)``, the NumPy oracle.
    variants : option sets that together exercise every option that changes the math; the
        reference tests run each one, and benchmarks use the first (the defaults).
    lr : a learning rate at which the optimizer makes steady progress on a unit-scale problem.
    """

    name: str
    cls: type
    reference: Callable
    variants: tuple[Mapping, ...] = field(default=({},))
    lr: float = 1e-3

    def make(self, params, **options):
        """A new optimizer over ``params`` at this entry's ``lr`` unless ``options`` names one."""
        return self.cls(params, **{"lr": self.lr, **options})


OPTIMIZERS = (
    OptimizerInfo(
        "sgd",
        optim.SGD,
        reference.sgd,
        variants=(
            {},
            {"momentum": 0.9},
            {"momentum": 0.9, "dampening": 0.9},
            {"momentum": 0.9, "nesterov": True},
            {"momentum": 0.5, "dampening": 0.3, "weight_decay": 0.1, "maximize": True},
            {"weight_decay": 0.1},
        ),
        lr=1e-2,
    ),
    OptimizerInfo(
        "adagrad",
        optim.Adagrad,
        reference.adagrad,
        variants=(
            {},
            {"lr_decay": 0.05},
            {"initial_accumulator_value": 0.5, "eps": 1e-3},
            {"weight_decay": 0.1, "maximize": True, "lr_decay": 0.01},
        ),
        lr=1e-2,
    ),
    OptimizerInfo(
        "rmsprop",
        optim.RMSprop,
        reference.rmsprop,
        variants=(
            {},
            {"centered": True},
            {"momentum": 0.9},
            {"momentum": 0.9, "centered": True, "weight_decay": 0.1},
            {"alpha": 0.5, "eps": 1e-3, "maximize": True},
        ),
        lr=1e-3,
    ),
    OptimizerInfo(
        "adam",
        optim.Adam,
        reference.adam,
        variants=(
            {},
            {"amsgrad": True},
            {"weight_decay": 0.1},
            {"weight_decay": 0.1, "decoupled_weight_decay": True},
            {"betas": (0.5, 0.9), "eps": 1e-3, "maximize": True, "amsgrad": True},
        ),
        lr=1e-3,
    ),
    OptimizerInfo(
        "adamw",
        optim.AdamW,
        reference.adam,
        variants=(
            {},
            {"amsgrad": True},
            {"weight_decay": 0.5, "maximize": True},
            {"weight_decay": 0.0},
        ),
        lr=1e-3,
    ),
    OptimizerInfo(
        "adamax",
        optim.Adamax,
        reference.adamax,
        variants=(
            {},
            {"weight_decay": 0.1},
            {"betas": (0.5, 0.6), "eps": 1e-3, "maximize": True},
        ),
        lr=2e-3,
    ),
    OptimizerInfo(
        "radam",
        optim.RAdam,
        reference.radam,
        variants=(
            {},
            {"weight_decay": 0.1},
            {"weight_decay": 0.1, "decoupled_weight_decay": True},
            # rho_t > 5 from step 2 with beta2 = 0.5: no warm-up phase
            {"betas": (0.8, 0.5), "eps": 1e-3, "maximize": True},
        ),
        lr=1e-3,
    ),
    OptimizerInfo(
        "lion",
        optim.Lion,
        reference.lion,
        variants=(
            {},
            {"weight_decay": 0.5},
            {"betas": (0.5, 0.7), "maximize": True, "weight_decay": 0.1},
        ),
        lr=1e-4,
    ),
    OptimizerInfo(
        "nadam",
        optim.NAdam,
        reference.nadam,
        variants=(
            {},
            {"weight_decay": 0.1},
            {"weight_decay": 0.1, "decoupled_weight_decay": True},
            {"betas": (0.5, 0.9), "momentum_decay": 0.1, "eps": 1e-3, "maximize": True},
        ),
        lr=2e-3,
    ),
    OptimizerInfo(
        "adabound",
        optim.AdaBound,
        reference.adabound,
        variants=(
            {},
            {"amsbound": True},
            {"weight_decay": 0.1, "final_lr": 0.01},
            # gamma = 0.5 closes the bounds within the test's steps
            {"gamma": 0.5, "betas": (0.5, 0.9), "maximize": True, "amsbound": True},
        ),
        lr=1e-3,
    ),
)

BY_NAME = {info.name: info for info in OPTIMIZERS}


def get(name):
    """The :class:`OptimizerInfo` called ``name`` (case-insensitive); ValueError lists choices."""
    try:
        return BY_NAME[name.lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(BY_NAME)}") from None
