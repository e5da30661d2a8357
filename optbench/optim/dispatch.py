"""Which kernel steps a bucket: serial, or on Numba's threads.

``dispatch="auto"`` steps fewer than ``PARALLEL_MIN_ELEMENTS`` elements serially (even with its
threads awake, the pool costs more than it saves), at least ``ALWAYS_PARALLEL_ELEMENTS`` on
Numba's threads (a serial step takes longer than the worst wake-up stall of the pool, about 4
ms), and sizes in between on whichever kernel its own recent steps ran faster (see
:class:`Dispatch`): the threads' wake-up cost depends on what the program does between steps,
which no fixed threshold can know.
"""

import numba
from numba.np.ufunc import parallel as numba_parallel

DISPATCH_MODES = ("auto", "serial", "parallel")
PARALLEL_MIN_ELEMENTS = 1 << 16
ALWAYS_PARALLEL_ELEMENTS = 1 << 24


_numba_thread_count = None  # Numba's C getter, once its threads are up


def thread_count():
    """``numba.get_num_threads()`` in 0.15 us instead of 0.66: once Numba's threads are up, its
    C getter is called directly (the public function takes two locks first)."""
    global _numba_thread_count
    if _numba_thread_count is not None:
        return _numba_thread_count()
    count = numba.get_num_threads()  # starts the threads
    getter = getattr(numba_parallel, "_get_num_threads", None)  # absent in another Numba
    if getter is not None and getter() == count:
        _numba_thread_count = getter
    return count


def median(values):
    """``statistics.median`` of a short non-empty list, without its type checks (5x faster)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


class Dispatch:
    """Chooses the serial or the parallel kernel of one bucket from its own recent step times.

    A parallel step is fast while Numba's worker threads are awake (the previous parallel call
    was less than a few ms ago) and can stall for a scheduler tick (about 4 ms) when they have
    gone to sleep; whether they sleep depends on what the program does between steps, which no
    fixed size threshold can know. So the bucket times its own steps, in runs of consecutive
    steps on one kernel: a trial run of ``TRIAL`` steps on one kernel, then ``interval`` steps
    on the faster of the two (by the medians of their latest runs), then a trial of the other.
    The interval doubles, from ``MIN_INTERVAL`` up to ``MAX_INTERVAL``, each time a trial
    confirms the choice, and starts again from ``MIN_INTERVAL`` when the choice changes. The
    first step of every run is not timed (it pays for the switch: compilation on first use, the
    threads' wake-up), and a long run ends early, with a trial of the other kernel, once its
    median exceeds the other kernel's. Results do not depend on the choice: both kernels give
    bitwise identical updates.
    """

    TRIAL = 3
    MIN_INTERVAL = 8
    MAX_INTERVAL = 1024
    WINDOW = 5

    def __init__(self):
        self.times = {True: [], False: []}
        self.interval = self.MIN_INTERVAL
        self._start(parallel=True, length=self.TRIAL, trial=True)

    def _start(self, parallel, length, trial):
        self.parallel, self.length, self.trial, self.taken = parallel, length, trial, 0
        self.times[parallel] = []

    def record(self, seconds):
        """Account for one step on the kernel ``self.parallel`` chose, lasting ``seconds``."""
        here, there = self.times[self.parallel], self.times[not self.parallel]
        if self.taken:
            here.append(seconds)
            del here[: -self.WINDOW]
        self.taken += 1
        if self.taken >= self.length:
            self._next_run()
        elif not self.trial and len(here) >= self.TRIAL and there and median(here) > median(there):
            self._start(not self.parallel, self.TRIAL, trial=True)

    def _next_run(self):
        here, there = self.times[self.parallel], self.times[not self.parallel]
        if not (self.trial and here and there):
            self._start(not self.parallel, self.TRIAL, trial=True)
        elif median(here) <= median(there):
            self.interval = self.MIN_INTERVAL
            self._start(self.parallel, self.interval, trial=False)
        else:
            self._start(not self.parallel, self.interval, trial=False)
            self.interval = min(2 * self.interval, self.MAX_INTERVAL)
