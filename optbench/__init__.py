"""optbench: fused Numba kernels and benchmarks for neural-network optimizers on the CPU.

Importing the package compiles nothing: kernels are compiled (or loaded from Numba's on-disk
cache) the first time they are called with a given dtype.
"""

__version__ = "0.1.0"


def register(item, *, replace=False):
    """Make an optimizer (an :class:`optbench.spec.OptimizerSpec`, see
    :func:`optbench.registry.register`) or a problem (a :class:`optbench.problems.Problem`
    subclass, see :func:`optbench.problems.register`) known to all of optbench in this
    process; returns it."""
    from . import registry
    from .spec import OptimizerSpec

    if isinstance(item, OptimizerSpec):
        return registry.register(item, replace=replace)
    if isinstance(item, type):
        from . import problems

        if issubclass(item, problems.Problem):
            return problems.register(item, replace=replace)
    raise TypeError(
        f"register takes an OptimizerSpec or a Problem subclass, got {type(item).__name__}"
    )
