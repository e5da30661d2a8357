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
    if type(value) is float:  # the common case skips the slow abstract-class checks
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def is_integer(value):
    """An integer (Python's or NumPy's) that is not a bool."""
    if type(value) is int:
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def is_flag(value):
    """``True`` or ``False``, Python's or NumPy's."""
    return isinstance(value, bool | np.bool_)


def has_type(value, kind):
    """Whether ``value`` is of the option type ``kind``: ``bool`` takes :func:`is_flag`,
    ``int`` :func:`is_integer` and ``float`` :func:`is_real` (an int included); any other type
    is an ``isinstance`` test."""
    checks = {bool: is_flag, int: is_integer, float: is_real}
    return checks[kind](value) if kind in checks else isinstance(value, kind)


def real(name, value, low=0.0, high=math.inf, *, low_open=False, high_open=False):
    """``float(value)``, finite and within ``[low, high]`` (either end open when asked).

    ``low=-math.inf`` (with ``high=math.inf``: any finite number) leaves that end unbounded.
    """
    if not is_real(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    above = low < value if low_open else low <= value
    below = value < high if high_open else value <= high
    if not (math.isfinite(value) and above and below):
        allowed = interval(low, high, low_open=low_open, high_open=high_open)
        within = f" {allowed}" if allowed else ""
        raise ValueError(f"{name} must be a finite number{within}, got {value!r}")
    return value


def interval(low, high, *, low_open=False, high_open=False):
    """``">= 0.0"``, ``"< 1.0"`` or ``"in [0.0, 1.0)"``: the allowed range, as error messages
    state it; ``""`` when both ends are infinite."""
    if math.isinf(low) and math.isinf(high):
        return ""
    if math.isinf(high):
        return f"{'>' if low_open else '>='} {low}"
    if math.isinf(low):
        return f"{'<' if high_open else '<='} {high}"
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
    if not is_flag(value):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def integer(name, value, low=0):
    """``int(value)`` for an integer (not a bool) >= ``low``."""
    if not is_integer(value):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def choice(name, value, choices):
    """``value`` when it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value
