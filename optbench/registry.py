"""Every optimizer optbench knows: the built-ins, installed plugins and specs registered at run
time. Tests, benchmarks, the command line and the reports iterate over :func:`specs`.

A plugin is an installed package that declares, in its ``pyproject.toml``::

    [project.entry-points."optbench.optimizers"]
    adabelief = "my_package.specs:ADABELIEF"     # a spec, or a sequence of specs

Plugins are loaded the first time :func:`specs` or :func:`get` is called. A plugin that fails
to import, whose value is not a spec, or whose spec takes a name already in use, is left out
with one warning naming the plugin and its entry point; the rest of optbench keeps working.
"""

import warnings
from importlib import metadata

from . import torch_optimizers
from .algorithms import BUILTIN
from .spec import OptimizerSpec

ENTRY_POINT_GROUP = "optbench.optimizers"

# the built-in specs, in the order of the tables and figures
OPTIMIZERS = BUILTIN

_registered = {}  # name -> spec, plugins and run-time registrations
_plugins_loaded = False


class PluginWarning(UserWarning):
    """A plugin was left out; the message names it and says why."""


def specs():
    """All specs: the built-ins in their order, then plugins and registrations by name."""
    _load_plugins()
    return (*BUILTIN, *(_registered[name] for name in sorted(_registered)))


def names():
    return tuple(spec.name for spec in specs())


def get(name):
    """The spec called ``name`` (case-insensitive); ``ValueError`` lists the choices."""
    if isinstance(name, OptimizerSpec):
        return name
    if not isinstance(name, str):
        raise TypeError(f"an optimizer name must be a string, got {type(name).__name__}")
    wanted = name.lower()
    for spec in specs():
        if spec.name == wanted:
            return spec
    torch_class = torch_optimizers.resolve(name)
    if torch_class is not None:  # "torch.optim.Adam" or "torch_adam": made and registered
        spec = torch_optimizers.torch_spec(torch_class)
        _registered.setdefault(spec.name, spec)
        return _registered[spec.name]
    raise ValueError(
        f"unknown optimizer {name!r}; choose from {', '.join(names())} "
        f"(or any torch.optim class, as {torch_optimizers.NAME_PREFIX}NAME)"
    )


def register(spec, *, replace=False):
    """Make ``spec`` known to every part of optbench in this process; returns it.

    Raises ``ValueError`` when its name or class name is already in use (unless ``replace``
    and the holder is not built in), ``TypeError`` when it is not an :class:`OptimizerSpec`.
    """
    if not isinstance(spec, OptimizerSpec):
        raise TypeError(f"register takes an OptimizerSpec, got {type(spec).__name__}")
    _load_plugins()
    _check_free(spec, replace)
    _registered[spec.name] = spec
    return spec


def unregister(name):
    """Forget a spec registered at run time or by a plugin (the built-ins stay)."""
    _registered.pop(get(name).name, None)


def _check_free(spec, replace):
    for held in (*BUILTIN, *_registered.values()):
        if held.name == spec.name and (held in BUILTIN or not replace):
            raise ValueError(f"an optimizer named {spec.name!r} is already registered")
        if held.class_name == spec.class_name and held.name != spec.name:
            raise ValueError(
                f"class name {spec.class_name!r} of {spec.name!r} is taken by {held.name!r}"
            )


def _load_plugins():
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = f"plugin {entry_point.name!r} ({entry_point.value}, {ENTRY_POINT_GROUP})"
        try:
            value = entry_point.load()
            found = (value,) if isinstance(value, OptimizerSpec) else value
            if not isinstance(found, list | tuple) or not all(
                isinstance(spec, OptimizerSpec) for spec in found
            ):
                raise TypeError(
                    f"gives a {type(value).__name__}, not an OptimizerSpec or a list of them"
                )
            for spec in found:
                _check_free(spec, replace=False)
                _registered[spec.name] = spec
        except Exception as error:  # a broken plugin must not break optbench
            warnings.warn(f"{where} left out: {error}", PluginWarning, stacklevel=2)
