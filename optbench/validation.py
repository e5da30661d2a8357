"""Checks of user-supplied values, each raising an error that names the value.

Every layer of optbench (optimizer options, layer arguments, runner and command settings)
validates with these, so that a bad value gets the same message wherever it is given:
``TypeError`` for the wrong kind of value, ``ValueError`` for a value out of range.
"""

import math
import numbers

import numpy as np


def is_real(value):
    """A real number that is not a bool (``True`` is an ``int`` to Python, never a rate here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def real(name, value, low=0.0, high=math.inf, *, low_open=False, high_open=False):
    """``float(value)``, finite and within ``[low, high]`` (either end open when asked)."""
    if not is_real(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    above = low < value if low_open else low <= value
    below = value < high if high_open else value <= high
    if not (math.isfinite(value) and above and below):
        allowed = interval(low, high, low_open=low_open, high_open=high_open)
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")
    return value


def interval(low, high, *, low_open=False, high_open=False):
    """``">= 0.0"`` or ``"in [0.0, 1.0)"``: the allowed range, as error messages state it."""
    if math.isinf(high):
        return f"{'>' if low_open else '>='} {low}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def optional_positive(name, value):
    """``None`` (the feature is off) or a finite number > 0."""
    if value is None:
        return None
    value = real(name, value)
    if value == 0:
        raise ValueError(f"{name} must be > 0 (or None to turn it off), got 0.0")
    return value


def flag(name, value):
    """``True`` or ``False`` (NumPy's bools included); any other value is refused."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def integer(name, value, low=0):
    """``int(value)`` for an integer (not a bool) >= ``low``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def choice(name, value, choices):
    """``value`` when it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value
