"""Training problems: closed-form test functions, logistic regression, MLPs, a CNN and a
transformer.

``PROBLEMS`` maps each name to its class, in display order (plugins' and registered problems
after the built-ins); :func:`make` builds one::

    from optbench import problems

    problem = problems.make("digits_mlp", seed=0, norm="batch", dropout=0.1)
    options = problems.parse_options("digits_mlp", ["norm=batch", "dropout=0.1"])

Every problem implements :class:`~optbench.problems.base.Problem`; see its module docstring
for the interface.
"""

import re
import warnings
from collections.abc import Mapping
from importlib import metadata

from ..registry import PluginWarning
from .analytic import Beale, NoisyQuadratic, Quadratic, Rosenbrock, Saddle
from .base import Batch, Evaluation, Option, Problem
from .logistic import LogisticRegression
from .mlp import DeepSigmoidMLP, DigitsMLP, XorMLP
from .mnist1d import Mnist1dCNN, Mnist1dMLP
from .transformer import ModularAddition

ENTRY_POINT_GROUP = "optbench.problems"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*\Z")

# the built-in problems, in display order
BUILTIN = (
    Quadratic,
    NoisyQuadratic,
    Rosenbrock,
    Beale,
    Saddle,
    LogisticRegression,
    XorMLP,
    DigitsMLP,
    DeepSigmoidMLP,
    Mnist1dMLP,
    Mnist1dCNN,
    ModularAddition,
)


class _ProblemTable(Mapping):
    """Name -> problem class: the built-ins in display order, then plugins (entry-point group
    ``optbench.problems``, loaded at the first lookup) and run-time registrations by name."""

    def __init__(self):
        self._builtin = {cls.name: cls for cls in BUILTIN}
        self._registered = {}
        self._plugins_loaded = False

    def _all(self):
        if not self._plugins_loaded:
            self._plugins_loaded = True
            _load_plugins(self)
        return {**self._builtin, **dict(sorted(self._registered.items()))}

    def __getitem__(self, name):
        return self._all()[name]

    def __iter__(self):
        return iter(self._all())

    def __len__(self):
        return len(self._all())

    def add(self, cls, *, replace=False):
        if not (isinstance(cls, type) and issubclass(cls, Problem)) or cls is Problem:
            raise TypeError(f"a problem must be a Problem subclass, got {cls!r}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ValueError(f"{cls.__name__}.name must be a lower-case identifier, got {name!r}")
        if name in self._builtin or (name in self._registered and not replace):
            raise ValueError(f"a problem named {name!r} is already registered")
        self._registered[name] = cls
        return cls


PROBLEMS = _ProblemTable()


def _load_plugins(table):
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = f"plugin {entry_point.name!r} ({entry_point.value}, {ENTRY_POINT_GROUP})"
        try:
            value = entry_point.load()
            found = value if isinstance(value, list | tuple) else (value,)
            for cls in found:
                table.add(cls)
        except Exception as error:  # a broken plugin must not break optbench
            warnings.warn(f"{where} left out: {error}", PluginWarning, stacklevel=3)


def register(cls, *, replace=False):
    """Make problem class ``cls`` (a :class:`Problem` subclass with a lower-case ``name``)
    known to all of optbench in this process; returns it. ``ValueError`` when the name is in
    use (unless ``replace`` and the holder is not built in)."""
    PROBLEMS._all()
    return PROBLEMS.add(cls, replace=replace)


def unregister(name):
    """Forget a problem registered at run time or by a plugin (the built-ins stay)."""
    PROBLEMS._registered.pop(get(name).name, None)


__all__ = [
    "PROBLEMS",
    "Batch",
    "Evaluation",
    "Option",
    "Problem",
    "get",
    "make",
    "parse_options",
    "register",
    "unregister",
]


def get(name):
    """The problem class called ``name`` (case-insensitive); a ``ValueError`` lists the names."""
    if not isinstance(name, str):
        raise TypeError(f"problem name must be a str, got {type(name).__name__}")
    try:
        return PROBLEMS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown problem {name!r}; choose from {', '.join(PROBLEMS)}") from None


def make(name, seed=0, **options):
    """A new problem ``name`` built from ``seed`` and ``options`` (see its ``options``)."""
    return get(name)(seed=seed, **options)


def parse_options(name, assignments):
    """Options of problem ``name`` from ``"key=value"`` strings (``--problem-opt``), each
    parsed by its :class:`Option`; a ``ValueError`` names a malformed pair or unknown key and
    lists the valid ones."""
    cls = get(name)
    options = {}
    for assignment in assignments:
        key, separator, text = assignment.partition("=")
        key = key.strip()
        if not separator or not key:
            raise ValueError(f"problem option {assignment!r} is not of the form key=value")
        if key not in cls.options:
            valid = ", ".join(cls.options) or "none"
            raise ValueError(f"{cls.name} has no option {key!r}; its options are: {valid}")
        options[key] = cls.options[key].parse(key, text)
    return options
