"""Command-line strings to values, shared by the sub-commands.

Options arrive as strings and are converted here, so that a malformed one gives a one-line
:class:`~optbench.commands.UsageError` that names the option and repeats the offending text, e.g.
``--lrs '-1': expected a finite number > 0``. Every converter takes ``(option, text)`` first,
so that one can be handed to :func:`comma_list` to convert each item of a list.
"""

import math

from .. import tables
from . import UsageError


def number(option, text, *, positive=False):
    """``float(text)``, finite, and ``> 0`` where ``positive``."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected a number") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise UsageError(f"{option} {text!r}: expected a finite number{' > 0' * positive}")
    return value


def integer(option, text, *, low=1):
    """``int(text)``, at least ``low``."""
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected an integer") from None
    if value < low:
        raise UsageError(f"{option} {text!r}: expected an integer >= {low}")
    return value


def batch_size(option, text):
    """``"full"`` (any case, the whole training set) or an integer >= 1."""
    return "full" if text.strip().lower() == "full" else integer(option, text)


def comma_list(option, text, convert=None):
    """The stripped items of ``"a,b,c"``, each passed through ``convert(option, item)`` if
    given; an empty item (``"a,,b"``, a trailing comma) is an error."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise UsageError(f"{option} {text!r}: expected a comma-separated list without gaps")
    return [convert(option, item) for item in items] if convert else items


def key_values(option, items):
    """``[(key, text)]`` from the repeated ``KEY=VALUE`` arguments ``items`` (``None``: none).

    The key is stripped and must not be empty; the value is kept as given (it may hold ``=``
    or be empty), for the option's own parser to convert.
    """
    pairs = []
    for item in items or ():
        key, sep, text = item.partition("=")
        if not (sep and key.strip()):
            raise UsageError(f"{option} {item!r}: expected KEY=VALUE")
        pairs.append((key.strip(), text))
    return pairs


def check_file_path(path, option="--out"):
    """Refuse, before any work, an output path that could not become a file (``None`` passes):
    see :func:`optbench.tables.check_writable`. Found only when the results are written, the
    fault would lose the measurements they hold."""
    if path is None:
        return
    try:
        tables.check_writable(path)
    except ValueError as error:
        raise UsageError(f"{option} {error}") from None


def check_directory_path(path, option):
    """Refuse, before any work, a path that could not become a directory (see
    :func:`check_file_path`)."""
    try:
        tables.check_writable(path, directory=True)
    except ValueError as error:
        raise UsageError(f"{option} {error}") from None


def check_table_path(path, option="--out"):
    """Refuse a table path that is neither ``.csv`` nor ``.parquet``, or cannot be written
    (see :func:`check_file_path`); ``None`` passes."""
    if path is not None and not path.endswith((".csv", ".parquet")):
        raise UsageError(f"{option} {path!r}: the file name must end in .csv or .parquet")
    check_file_path(path, option)


def optimizer_name(option, text):
    """The registered name of the optimizer ``text`` (a converter of :func:`comma_list`)."""
    from .. import registry

    try:
        return registry.get(text).name
    except ValueError as error:
        raise UsageError(f"{option}: {error}") from None
