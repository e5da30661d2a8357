"""Tables on disk: output paths checked before any work, tables written atomically and read
back exactly.

Every table optbench writes (a run's record, a sweep's cells and results, a comparison, a
throughput run) goes through :func:`write_table`, in the format its suffix names (``.parquet``
or ``.csv``). A file is written under a temporary name in its target directory and moved onto
its path with :func:`os.replace` (:func:`atomic_write`), so a reader never sees half a file and
a failed write leaves the old content.

CSV floats are written as the shortest decimal that reads back as the same float64 (Python's
``repr``, e.g. ``0.1``, ``1.0``, ``1e-310``); float32 columns are widened to float64 first, so
they too read back as their exact values. :func:`read_table` of a table written here returns
equal floats, bit for bit, in both formats.

:func:`check_writable` refuses, before the work whose results a path will hold, a path that
could not be written then: a directory where a file is wanted or the reverse, a parent that is
a file, a name that is not UTF-8 or is too long, a directory where nothing can be created.
"""

import contextlib
import os
import tempfile

import numpy as np
import pandas as pd

SUFFIXES = (".parquet", ".csv")
# the process's umask, read once (reading it means setting it)
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write(path, writer, *, mode="w"):
    """Call ``writer(file)`` on a temporary file beside ``path``, then move it onto ``path``.

    ``mode`` is ``"w"`` (text, UTF-8, ``\\n`` line ends kept as written) or ``"wb"``. The
    temporary name (``.<random>.tmp``) does not grow with ``path``'s name. When ``writer``
    raises, the temporary file is removed and ``path`` keeps its old content.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    try:
        text = "b" not in mode
        with os.fdopen(
            handle, mode, encoding="utf-8" if text else None, newline="" if text else None
        ) as file:
            writer(file)
        # mkstemp creates the file for its owner only; give it the permissions of a new file
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _suffix(path):
    suffix = os.path.splitext(os.fspath(path))[1]
    if suffix not in SUFFIXES:
        raise ValueError(f"{os.fspath(path)!r}: the file name must end in .csv or .parquet")
    return suffix


def write_csv(frame, path):
    """Write ``frame`` (index dropped) to ``path`` as UTF-8 CSV, atomically, floats as in the
    module docstring."""
    narrow = [name for name, dtype in frame.dtypes.items() if dtype == np.float32]
    if narrow:
        frame = frame.astype(dict.fromkeys(narrow, np.float64))
    atomic_write(path, lambda file: frame.to_csv(file, index=False, lineterminator="\n"))


def write_table(frame, path):
    """Write ``frame`` (index dropped) to ``path``, Parquet or CSV by the suffix, atomically."""
    if _suffix(path) == ".csv":
        write_csv(frame, path)
    else:
        atomic_write(path, lambda file: frame.to_parquet(file, index=False), mode="wb")


def read_table(path):
    """The table at ``path`` (``.parquet`` or ``.csv``), as :func:`write_table` wrote it."""
    return pd.read_csv(path) if _suffix(path) == ".csv" else pd.read_parquet(path)


def check_writable(path, *, directory=False):
    """Raise ``ValueError("'<path>': <why>")`` if ``path`` could not later become a file (a
    directory where ``directory``); missing parent directories are fine (they are made when
    writing), and nothing is left behind by the check."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{text!r}: the name is not valid UTF-8") from None
    absolute = os.path.abspath(text)
    if os.path.isdir(absolute) and not directory:
        raise ValueError(f"{text!r}: is a directory; give a file name")
    if os.path.lexists(absolute) and not os.path.isdir(absolute) and directory:
        raise ValueError(f"{text!r}: is a file; give a directory")
    existing = absolute if directory and os.path.isdir(absolute) else os.path.dirname(absolute)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"{text!r}: {existing!r} is not a directory")
    _check_lengths(text, absolute, existing)
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(f"{text!r}: cannot write in {existing!r} ({error.strerror})") from None


def _check_lengths(text, absolute, existing):
    """The names below ``existing`` within NAME_MAX bytes, the whole path within PATH_MAX."""
    name_max = os.pathconf(existing, "PC_NAME_MAX")
    path_max = os.pathconf(existing, "PC_PATH_MAX")
    for name in os.path.relpath(absolute, existing).split(os.sep):
        if len(os.fsencode(name)) > name_max:
            raise ValueError(f"{text!r}: a name is longer than {name_max} bytes")
    if len(os.fsencode(absolute)) >= path_max:
        raise ValueError(f"{text!r}: the path is longer than {path_max - 1} bytes")
