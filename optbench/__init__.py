"""optbench: fused Numba kernels and benchmarks for neural-network optimizers on the CPU.

Importing the package compiles nothing: kernels are compiled (or loaded from Numba's on-disk
cache) the first time they are called with a given dtype.
"""

__version__ = "0.1.0"


def register(spec, *, replace=False):
    """Make an :class:`optbench.spec.OptimizerSpec` known to all of optbench in this process
    (see :func:`optbench.registry.register`); returns it."""
    from . import registry

    return registry.register(spec, replace=replace)
