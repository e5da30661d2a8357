"""AdaBelief as an optbench plugin: ``kernel.py`` (the fused chunk), ``reference.py`` (the NumPy
oracle) and ``spec.py`` (the declaration that optbench finds through its entry point)."""
