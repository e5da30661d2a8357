"""Sub-commands of ``optbench`` (see :mod:`optbench.cli`): argument parsing and printing only;
the work is done by the library modules they call."""
