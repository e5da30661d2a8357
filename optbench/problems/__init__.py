"""Training problems: closed-form test functions, logistic regression and MLPs.

``PROBLEMS`` maps each name to its class, in display order; :func:`make` builds one::

    from optbench import problems

    problem = problems.make("digits_mlp", seed=0, norm="batch", dropout=0.1)
    options = problems.parse_options("digits_mlp", ["norm=batch", "dropout=0.1"])

Every problem implements :class:`~optbench.problems.base.Problem`; see its module docstring
for the interface.
"""

from .analytic import Beale, NoisyQuadratic, Quadratic, Rosenbrock, Saddle
from .base import Batch, Evaluation, Option, Problem
from .logistic import LogisticRegression
from .mlp import DeepSigmoidMLP, DigitsMLP, XorMLP

PROBLEMS: dict[str, type[Problem]] = {
    cls.name: cls
    for cls in (
        Quadratic,
        NoisyQuadratic,
        Rosenbrock,
        Beale,
        Saddle,
        LogisticRegression,
        XorMLP,
        DigitsMLP,
        DeepSigmoidMLP,
    )
}

__all__ = ["PROBLEMS", "Batch", "Evaluation", "Option", "Problem", "get", "make", "parse_options"]


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
