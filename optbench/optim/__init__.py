"""Optimizers with the names, options, defaults and semantics of ``torch.optim``, for NumPy arrays.

::

    opt = optim.Adam(params, lr=1e-3)
    opt.step(grads)            # one fused kernel call updates every array in place
    sd = opt.state_dict()      # plain dict of arrays and numbers
    opt.load_state_dict(sd)    # exact round trip

``params`` is a list of float32/float64 C-contiguous writeable arrays, or a list of parameter
groups (dicts with ``"params"`` and per-group options) as in torch. Options are validated at
construction and again at every step (a schedule may change ``param_groups[i]["lr"]``), and
``step`` checks every gradient, before any array is touched.

Each class is made from its spec (``optbench.algorithms``, or a plugin's): ``optim.Adam.spec``.
The class of a plugin's optimizer is here too, under its spec's ``class_name``
(``optim.optimizer_class(spec)`` or ``getattr(optim, class_name)``).

Two options of every optimizer change how a step runs, not what it computes:
``dispatch="auto" | "serial" | "parallel"`` (serial kernel, Numba's threads, or, by default,
whichever the optimizer's own step times show faster: see :attr:`Optimizer.dispatch`), and
``flush_denormals=False`` (True treats subnormal numbers as zero inside the step, which removes
their slow path at the cost of flushing values below ~1e-38 in float32; see
:attr:`Optimizer.flush_denormals`).
"""

from .. import registry
from ..kernels.chunks import CHUNK_ELEMENTS, CHUNK_MULTIPLE, chunk_bounds, chunk_count
from .base import FLOAT_DTYPES, NONFINITE_POLICIES, Optimizer, work_table
from .classes import (
    SGD,
    AdaBound,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Lion,
    NAdam,
    RAdam,
    RMSprop,
    optimizer_class,
)
from .dispatch import ALWAYS_PARALLEL_ELEMENTS, DISPATCH_MODES, PARALLEL_MIN_ELEMENTS
from .groups import GroupList, ParamGroup

__all__ = [
    "ALWAYS_PARALLEL_ELEMENTS",
    "CHUNK_ELEMENTS",
    "CHUNK_MULTIPLE",
    "DISPATCH_MODES",
    "FLOAT_DTYPES",
    "NONFINITE_POLICIES",
    "PARALLEL_MIN_ELEMENTS",
    "SGD",
    "AdaBound",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "GroupList",
    "Lion",
    "NAdam",
    "Optimizer",
    "ParamGroup",
    "RAdam",
    "RMSprop",
    "chunk_bounds",
    "chunk_count",
    "make",
    "optimizer_class",
    "work_table",
]


def make(spec, params, **options):
    """An optimizer of ``spec`` (a spec or a registered name) over ``params``, at the spec's
    ``lr`` unless ``options`` names one."""
    spec = registry.get(spec)
    return optimizer_class(spec)(params, **{"lr": spec.lr, **options})


def __getattr__(name):
    """The class of a registered plugin's optimizer, by its class name."""
    for spec in registry.specs():
        if spec.class_name == name:
            return optimizer_class(spec)
    raise AttributeError(f"module 'optbench.optim' has no attribute {name!r}")
