"""Plain NumPy transcriptions of every algorithm in optbench: the test oracle.

Written to be read, not to be fast: each function follows the published pseudo-code line by
line, with the formula in its docstring. ``optimizers`` holds the update rules, ``nn`` the
normalization, activation and loss layers.
"""
