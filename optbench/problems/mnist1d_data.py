"""MNIST-1D (Greydanus 2020): 5,000 one-dimensional signals of length 40 in 10 classes, made by
the ``mnist1d`` package's generator with its default arguments (4,000 training and 1,000 test
signals), never downloaded.

The generator seeds NumPy's and Python's global random state; optbench saves both before and
restores them after, so that no run of optbench sees them changed. The signals are generated
once and kept under the cache folder (``$OPTBENCH_CACHE_DIR``, else ``~/.cache/optbench``, as
the kernels' drivers), in a file named by the package's version and the generator's arguments,
written atomically: a run interrupted while writing leaves no partial file.
"""

import contextlib
import hashlib
import json
import random
from importlib import metadata
from pathlib import Path

import numpy as np

from ..kernels.drivers import cache_folder
from ..tables import atomic_write

TRAIN_SIZE, TEST_SIZE, LENGTH, CLASSES = 4000, 1000, 40, 10
_KEYS = ("x_train", "y_train", "x_test", "y_test")


@contextlib.contextmanager
def _global_random_state_kept():
    """Inside the block, NumPy's and Python's global random generators may be reseeded; both
    are put back as they were after it."""
    # the legacy global generator is the one the package seeds
    numpy_state, python_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(numpy_state)  # noqa: NPY002
        random.setstate(python_state)


def _arguments():
    """The generator's default arguments, without its download address."""
    from mnist1d.data import get_dataset_args

    arguments = get_dataset_args(as_dict=True)
    arguments.pop("url", None)
    return arguments


def _file(arguments):
    version = metadata.version("mnist1d")
    digest = hashlib.sha256(json.dumps(arguments, sort_keys=True).encode()).hexdigest()[:12]
    return cache_folder() / "mnist1d" / f"mnist1d-{version}-{digest}.npz"


def _generate(arguments):
    from mnist1d.data import make_dataset
    from mnist1d.utils import ObjectView

    with _global_random_state_kept():
        data = make_dataset(ObjectView(dict(arguments)))
    return {
        "x_train": np.asarray(data["x"], np.float64),
        "y_train": np.asarray(data["y"], np.int64),
        "x_test": np.asarray(data["x_test"], np.float64),
        "y_test": np.asarray(data["y_test"], np.int64),
    }


def _read(path):
    """The cached arrays, or None where the file is missing or unreadable."""
    try:
        with np.load(path) as file:
            arrays = {key: file[key] for key in _KEYS}
    except (OSError, KeyError, ValueError):
        return None
    shapes = {"x_train": (TRAIN_SIZE, LENGTH), "x_test": (TEST_SIZE, LENGTH)}
    shapes.update(y_train=(TRAIN_SIZE,), y_test=(TEST_SIZE,))
    if any(arrays[key].shape != shape for key, shape in shapes.items()):
        return None
    return arrays


def mnist1d(cache=True):
    """``{"x_train", "y_train", "x_test", "y_test"}``: float64 signals (4000, 40) and
    (1000, 40), already centred and scaled to a standard deviation of 1 by the generator, and
    int64 labels 0-9; new arrays at every call. With ``cache`` the signals are read from, or
    generated once into, the cache folder (where it cannot be written, they are generated
    each time)."""
    arguments = _arguments()
    path = _file(arguments)
    arrays = _read(path) if cache else None
    if arrays is None:
        arrays = _generate(arguments)
        if cache:
            with contextlib.suppress(OSError):
                atomic_write(path, lambda file: np.savez(file, **arrays), mode="wb")
    return {key: np.array(arrays[key]) for key in _KEYS}


def cached_file():
    """Where :func:`mnist1d` keeps the signals (whether or not the file exists yet)."""
    return Path(_file(_arguments()))
