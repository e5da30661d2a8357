"""Tables on disk (optbench.tables): exact round trips, atomic writes, output paths checked."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optbench import tables


def awkward_floats():
    values = [0.1, 1.0, 1 / 3, 1e-310, 5e-324, 1.7976931348623157e308, -0.0, np.inf, np.nan]
    return pd.DataFrame(
        {
            "float64": values,
            "float32": np.array([0.1, 1.0, 1 / 3, 1e-40, 1e-45, 3e38, -0.0, np.inf, np.nan]).astype(
                np.float32
            ),
            "name": list("abcdefghi"),
            "count": np.arange(9),
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tables_read_back_bit_for_bit(tmp_path, suffix):
    frame = awkward_floats()
    path = tmp_path / f"t{suffix}"
    tables.write_table(frame, path)
    back = tables.read_table(path)
    expected = frame.astype({"float32": np.float64}) if suffix == ".csv" else frame
    pd.testing.assert_frame_equal(back, expected, check_exact=True)
    assert np.array_equal(np.signbit(back["float64"]), np.signbit(frame["float64"]))


def test_csv_floats_are_the_shortest_exact_decimals(tmp_path):
    path = tmp_path / "t.csv"
    tables.write_table(pd.DataFrame({"x": [0.1, 1.0, 2.5e-7]}), path)
    assert path.read_text() == "x\n0.1\n1.0\n2.5e-07\n"


def test_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "table.parquet"
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    tables.write_table(frame, path)

    def broken(self, target, **kwargs):
        target.write(b"half a parquet file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(OSError, match="disk full"):
        tables.write_table(pd.DataFrame({"a": [3.0]}), path)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)  # the old table, whole
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]
    with pytest.raises(ValueError, match=r"must end in \.csv or \.parquet"):
        tables.write_table(frame, tmp_path / "table.txt")


def test_a_name_that_fits_is_written_whatever_its_length(tmp_path):
    # the temporary name does not grow with the target's
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    path = tmp_path / ("x" * (name_max - len(".csv")) + ".csv")
    tables.check_writable(path)
    tables.write_table(pd.DataFrame({"a": [1]}), path)
    assert tables.read_table(path)["a"].tolist() == [1]


def test_new_files_get_the_permissions_of_new_files(tmp_path):
    path = tmp_path / "t.csv"
    tables.write_table(pd.DataFrame({"a": [1]}), path)
    assert path.stat().st_mode & 0o777 == 0o666 & ~tables._UMASK


def test_writable_paths_pass_and_leave_nothing(tmp_path):
    tables.check_writable(tmp_path / "new" / "deeper" / "t.csv")
    tables.check_writable(tmp_path / "new" / "deeper", directory=True)
    tables.check_writable(tmp_path, directory=True)
    (tmp_path / "old.csv").write_text("a\n1\n")
    tables.check_writable(tmp_path / "old.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]


def unwritable_directory():
    """A directory where even root cannot create a file (sysfs), or None."""
    return "/sys" if Path("/sys/kernel").is_dir() else None


@pytest.mark.parametrize(
    ("name", "directory", "message"),
    [
        (".", False, "is a directory; give a file name"),
        ("plain", True, "is a file; give a directory"),
        ("plain/t.csv", False, "is not a directory"),
        ("plain/deeper/t.csv", False, "is not a directory"),
        ("\udcff.csv", False, "the name is not valid UTF-8"),
        ("x" * 300 + ".csv", False, "a name is longer than"),
        ("x" * 300 + "/t.csv", False, "a name is longer than"),
        ("/".join(["x" * 200] * 30) + "/t.csv", False, "the path is longer than"),
        ("x" * 300, True, "a name is longer than"),
    ],
)
def test_unwritable_paths_are_refused(tmp_path, name, directory, message):
    (tmp_path / "plain").write_text("")
    with pytest.raises(ValueError, match=message):
        tables.check_writable(os.path.join(tmp_path, name), directory=directory)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


def test_a_directory_where_nothing_can_be_created_is_refused():
    directory = unwritable_directory()
    if directory is None:
        pytest.skip("no sysfs")
    with pytest.raises(ValueError, match=r"cannot write in '/sys' \("):
        tables.check_writable(f"{directory}/t.csv")
