"""Sub-commands of ``optbench`` (see :mod:`optbench.cli`): argument parsing and printing only;
the work is done by the library modules they call."""


class UsageError(Exception):
    """A bad command-line value; the message names it and, where there are any, the choices."""
