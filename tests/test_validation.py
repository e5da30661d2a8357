"""The shared checks: edge values pass, bools, NaN, Inf, wrong types and values out of range
are refused with a ``TypeError``/``ValueError`` that names the argument."""

import fractions
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optbench import validation

NOT_NUMBERS = [None, "1", [1.0], np.ones(1), 1j]
BOOLS = [True, False, np.True_, np.False_]


@pytest.mark.parametrize(
    "value", [0, 1.5, -2, np.float32(0.5), np.int64(3), fractions.Fraction(1, 3)]
)
def test_is_real_accepts_numbers(value):
    assert validation.is_real(value)


@pytest.mark.parametrize("value", BOOLS + NOT_NUMBERS)
def test_is_real_refuses_bools_and_non_numbers(value):
    assert not validation.is_real(value)


@pytest.mark.parametrize("value", [0, -7, 2**70, np.int8(1), np.uint64(2**64 - 1)])
def test_is_integer_accepts_integers(value):
    assert validation.is_integer(value)


@pytest.mark.parametrize("value", [*BOOLS, *NOT_NUMBERS, 1.0, np.float64(2.0)])
def test_is_integer_refuses_bools_floats_and_non_numbers(value):
    assert not validation.is_integer(value)


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (True, bool, True),
        (np.False_, bool, True),
        (1, bool, False),
        (3, int, True),
        (np.int32(3), int, True),
        (True, int, False),
        (3.0, int, False),
        (3, float, True),
        (0.5, float, True),
        (False, float, False),
        ("adam", str, True),
        (1, str, False),
    ],
)
def test_has_type(value, kind, expected):
    assert validation.has_type(value, kind) is expected


# --------------------------------------------------------------------------------------------
# real
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "low", "high", "ends"),
    [
        (0, 0.0, math.inf, {}),
        (1.0, 0.0, 1.0, {}),
        (np.float32(0.5), 0.0, 1.0, {"low_open": True, "high_open": True}),
        (-1e300, -math.inf, math.inf, {}),
        (-3.0, -math.inf, 0.0, {}),
        (2, 2.0, math.inf, {}),
    ],
)
def test_real_accepts_its_edges(value, low, high, ends):
    result = validation.real("x", value, low, high, **ends)
    assert type(result) is float and result == value


@pytest.mark.parametrize("value", BOOLS + NOT_NUMBERS)
def test_real_refuses_wrong_types(value):
    with pytest.raises(TypeError, match="rate must be a real number"):
        validation.real("rate", value)


@pytest.mark.parametrize(
    ("value", "low", "high", "ends", "message"),
    [
        (-0.1, 0.0, math.inf, {}, "rate must be a finite number >= 0.0, got -0.1"),
        (0.0, 0.0, math.inf, {"low_open": True}, "rate must be a finite number > 0.0, got 0.0"),
        (1.0, 0.0, 1.0, {"high_open": True}, r"rate must be a finite number in \[0.0, 1.0\)"),
        (1.5, -math.inf, 1.0, {}, "rate must be a finite number <= 1.0, got 1.5"),
        (1.0, -math.inf, 1.0, {"high_open": True}, "rate must be a finite number < 1.0"),
        (math.nan, -math.inf, math.inf, {}, "rate must be a finite number, got nan"),
        (math.inf, 0.0, math.inf, {}, "rate must be a finite number >= 0.0, got inf"),
        (-math.inf, -math.inf, math.inf, {}, "rate must be a finite number, got -inf"),
    ],
)
def test_real_refuses_values_out_of_range(value, low, high, ends, message):
    with pytest.raises(ValueError, match=message):
        validation.real("rate", value, low, high, **ends)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_real_accepts_exactly_the_finite_numbers_in_range(value):
    if math.isfinite(value) and -1.0 < value <= 1.0:
        assert validation.real("v", value, -1.0, 1.0, low_open=True) == value
    else:
        with pytest.raises(ValueError, match=r"v must be a finite number in \(-1.0, 1.0\]"):
            validation.real("v", value, -1.0, 1.0, low_open=True)


@pytest.mark.parametrize(
    ("low", "high", "ends", "expected"),
    [
        (0.0, math.inf, {}, ">= 0.0"),
        (0.0, math.inf, {"low_open": True}, "> 0.0"),
        (-math.inf, 1.0, {}, "<= 1.0"),
        (-math.inf, 1.0, {"high_open": True}, "< 1.0"),
        (0.0, 1.0, {"high_open": True}, "in [0.0, 1.0)"),
        (0.0, 1.0, {"low_open": True}, "in (0.0, 1.0]"),
        (-math.inf, math.inf, {}, ""),
    ],
)
def test_interval(low, high, ends, expected):
    assert validation.interval(low, high, **ends) == expected


# --------------------------------------------------------------------------------------------
# optional_positive, flag, integer, choice
# --------------------------------------------------------------------------------------------
def test_optional_positive():
    assert validation.optional_positive("clip", None) is None
    assert validation.optional_positive("clip", 1e-300) == 1e-300
    with pytest.raises(ValueError, match="clip must be > 0"):
        validation.optional_positive("clip", 0)
    with pytest.raises(ValueError, match="clip must be a finite number"):
        validation.optional_positive("clip", math.inf)
    with pytest.raises(TypeError, match="clip must be a real number"):
        validation.optional_positive("clip", True)


@pytest.mark.parametrize("value", BOOLS)
def test_flag_accepts_bools(value):
    assert validation.flag("training", value) is bool(value)


@pytest.mark.parametrize("value", [0, 1, 1.0, "True", None])
def test_flag_refuses_everything_else(value):
    with pytest.raises(TypeError, match="training must be True or False"):
        validation.flag("training", value)


@pytest.mark.parametrize(("value", "low"), [(0, 0), (1, 1), (np.int64(5), 5), (2**70, -1)])
def test_integer_accepts_its_lower_edge(value, low):
    result = validation.integer("steps", value, low)
    assert type(result) is int and result == value


@pytest.mark.parametrize("value", [*BOOLS, *NOT_NUMBERS, 1.0, math.nan, math.inf])
def test_integer_refuses_wrong_types(value):
    with pytest.raises(TypeError, match="steps must be an integer"):
        validation.integer("steps", value, 1)


def test_integer_refuses_values_below_low():
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        validation.integer("steps", 0, 1)


def test_choice():
    assert validation.choice("mode", "min", ("min", "max")) == "min"
    with pytest.raises(ValueError, match=r"mode must be one of \('min', 'max'\), got 'up'"):
        validation.choice("mode", "up", ("min", "max"))
