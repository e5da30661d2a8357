"""Numba kernels: pure functions over NumPy arrays, no I/O, no classes.

Modules here never import from the layers above them (``optim``, ``nn``, ``problems``...).
"""
