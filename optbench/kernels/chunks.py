"""How an array is cut into work chunks: the rule the optimizers and the STREAM kernels share.

An array longer than one chunk is cut into a multiple of ``CHUNK_MULTIPLE`` chunks of equal
size (to one element), each of at most ``CHUNK_ELEMENTS``: small enough that two threads share
a 1e5-element model evenly, large enough that per-chunk scalar set-up is negligible. The
parallel kernels give each thread an equal count of chunks, so 1e5 elements cut as 32768 +
32768 + 32768 + 1696 left one thread twice the work of the other (Adam, float32, 2 threads:
34 us a step, against 19 us for 65536 elements in two equal chunks).
"""

import itertools

CHUNK_ELEMENTS = 1 << 15
CHUNK_MULTIPLE = 4


def chunk_count(size, chunk_elements, multiple):
    """Number of equal chunks of at most ``chunk_elements`` for ``size`` elements: one, or a
    multiple of ``multiple`` (0 for 0). Plain arithmetic, also compiled by Numba for the
    STREAM kernels of :mod:`optbench.bandwidth`."""
    count = -(-size // chunk_elements)
    if count > 1:
        count = -(-count // multiple) * multiple
    return count


def chunk_bounds(size):
    """``(start, stop)`` of the work chunks of an array of ``size`` elements."""
    count = chunk_count(size, CHUNK_ELEMENTS, CHUNK_MULTIPLE)
    bounds = [size * k // max(count, 1) for k in range(count + 1)]
    return list(itertools.pairwise(bounds))
