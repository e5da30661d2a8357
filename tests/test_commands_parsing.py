"""The string-to-value converters shared by the sub-commands (optbench.commands._parsing)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optbench.commands import UsageError
from optbench.commands._parsing import (
    batch_size,
    check_file_path,
    check_table_path,
    comma_list,
    integer,
    key_values,
    number,
)


def test_values():
    assert number("--lr", " 1e-3 ") == 1e-3
    assert number("--min-delta", "-0.5") == -0.5
    assert integer("--seed", "0", low=0) == 0
    assert batch_size("--batch-size", " Full ") == "full"
    assert batch_size("--batch-size", "64") == 64
    assert comma_list("--problems", " a, b ,c") == ["a", "b", "c"]
    assert comma_list("--seeds", "3, 4", integer) == [3, 4]
    assert key_values("--opt", None) == []
    assert key_values("--opt", [" betas =0.9,0.99", "eps=", "tag=a=b"]) == [
        ("betas", "0.9,0.99"),
        ("eps", ""),
        ("tag", "a=b"),
    ]
    for path in (None, "run.csv", "dir/run.parquet"):
        check_table_path(path)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: number("--lr", "fast"), "--lr 'fast': expected a number"),
        (lambda: number("--lr", "inf"), "--lr 'inf': expected a finite number"),
        (lambda: number("--lr", "0", positive=True), "--lr '0': expected a finite number > 0"),
        (lambda: integer("--steps", "1.5"), "--steps '1.5': expected an integer"),
        (lambda: integer("--jobs", "0"), "--jobs '0': expected an integer >= 1"),
        (lambda: integer("--seed", "-1", low=0), "--seed '-1': expected an integer >= 0"),
        (lambda: batch_size("--batch-size", "half"), "--batch-size 'half': expected an integer"),
        (lambda: comma_list("--lrs", "0.1,"), "--lrs '0.1,': expected a comma-separated list"),
        (lambda: comma_list("--seeds", "1,x", integer), "--seeds 'x': expected an integer"),
        (lambda: key_values("--opt", ["eps=1", "momentum"]), "--opt 'momentum': expected KEY="),
        (lambda: key_values("--schedule-opt", ["=5"]), "--schedule-opt '=5': expected KEY="),
        (lambda: check_table_path("t.txt"), "--out 't.txt': the file name must end in .csv or"),
    ],
)
def test_errors_name_the_option_and_the_text(call, message):
    with pytest.raises(UsageError) as error:
        call()
    assert str(error.value).startswith(message)


@given(st.text())
def test_any_text_gives_a_value_or_a_usage_error(text):
    for convert in (number, integer, batch_size, comma_list):
        try:
            convert("--x", text)
        except UsageError as error:
            assert str(error).startswith(f"--x {text!r}: expected ")
    try:
        key_values("--x", [text])
    except UsageError as error:
        assert str(error) == f"--x {text!r}: expected KEY=VALUE"


def test_output_paths_that_cannot_become_files_are_refused(tmp_path):
    (tmp_path / "plain").write_text("")
    check_file_path(None)
    check_file_path(str(tmp_path / "new" / "deeper" / "t.csv"))  # directories are made later
    with pytest.raises(UsageError, match="is a directory; give a file name"):
        check_file_path(str(tmp_path))
    with pytest.raises(UsageError, match="is not a directory"):
        check_file_path(str(tmp_path / "plain" / "t.csv"))
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(UsageError, match="is a directory"):
        check_table_path(str(tmp_path / "d.csv"))
