"""Instructions per call of the kernel benchmarks, counted under Valgrind
(:mod:`optbench.instructions`): a measure that does not move with the machine's load, so that
``optbench regress --instructions`` sees a change of 1% where wall time needs 50%.

All benchmarks are counted once, in one Valgrind process, in asv's ``setup_cache``; the tracks
read the counts:

* ``track_kernel_instructions``: the instructions of one call outside the Python interpreter
  and the memory allocators (the kernels, NumPy's and BLAS's C, libm), the same in every
  process;
* ``track_instructions``: every instruction of the call, the interpreter's included, which
  moves by a fraction of a percent between processes (CPython's caches probe by address).

Skipped (``n/a``) where Valgrind is not installed. ``OPTBENCH_INSTRUCTIONS=REGEX`` in the
environment counts the benchmarks whose name matches (``optbench instructions --list`` shows
the names); in smoke mode a few benchmarks only.
"""

import os

from optbench import instructions

from .common import SMOKE

SMOKE_PATTERN = r"optimizer:(sgd|adam) float32|layer:layer_norm float32"
NAMES = instructions.select(
    os.environ.get("OPTBENCH_INSTRUCTIONS") or (SMOKE_PATTERN if SMOKE else None)
)


class Instructions:
    params = (NAMES,)
    param_names = ("benchmark",)
    unit = "instructions"
    # one Valgrind process counts every benchmark: about 5 minutes on 2 cores
    timeout = 3600

    def setup_cache(self):
        if instructions.valgrind_path() is None:
            return None
        table = instructions.measure(NAMES)
        return {
            row.benchmark: (row.kernel_instructions, row.instructions) for row in table.itertuples()
        }

    def setup(self, counts, benchmark):
        if counts is None:
            raise NotImplementedError("valgrind is not installed")
        self.counts = counts[benchmark]

    def track_kernel_instructions(self, *_):
        return self.counts[0]

    def track_instructions(self, *_):
        return self.counts[1]
