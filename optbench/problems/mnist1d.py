"""MNIST-1D problems (:mod:`optbench.problems.mnist1d_data`): an MLP on the 40-sample signals,
the data set's first benchmark, whose paper reports 68% test accuracy for an MLP (32% for
logistic regression, 94% for a CNN)."""

from types import MappingProxyType

import numpy as np

from .base import DTYPES, Option
from .data import Split
from .mlp import _ACTIVATION_NAMES, INITS, NORMS, Network, parse_hidden
from .mnist1d_data import mnist1d


def mnist1d_split(dtype):
    """The 4,000 training and 1,000 test signals in ``dtype`` (see ``mnist1d_data``)."""
    data = mnist1d()
    return Split(
        data["x_train"].astype(dtype),
        data["y_train"],
        data["x_test"].astype(dtype),
        data["y_test"],
    )


class Mnist1dMLP(Network):
    """MNIST-1D (4,000 training and 1,000 test signals of length 40, 10 classes) and an MLP
    40-100-100-10 (by default: ReLU, He init, softmax cross-entropy), as in the data set's
    paper. The signals come centred and scaled by the generator; the split is the
    generator's, the same for every seed (the seed draws the initial weights and batches)."""

    name = "mnist1d_mlp"
    description = "MNIST-1D signals (length 40, 10 classes), MLP 40-100-100-10 (ReLU, He init)"
    options = MappingProxyType(
        {
            "hidden": Option(
                "100,100", str, "hidden layer widths, comma-separated", validate=parse_hidden
            ),
            "activation": Option("relu", str, "hidden activation", _ACTIVATION_NAMES),
            "init": Option("he", str, "weight initializer", INITS),
            "norm": Option("none", str, "normalization before each activation", NORMS),
            "dropout": Option(
                0.0,
                float,
                "dropout probability after each activation",
                low=0,
                high=1,
                high_open=True,
            ),
            "l1": Option(0.0, float, "L1 penalty l1 * sum|W| on the weights", low=0),
            "l2": Option(0.0, float, "L2 penalty l2/2 * sum W^2 on the weights", low=0),
            "dtype": Option("float32", str, "dtype of data, parameters and computation", DTYPES),
        }
    )
    n_outputs = 10

    def __init__(self, seed=0, **options):
        super().__init__(seed, **options)
        config = self.config
        self._build(
            mnist1d_split(np.dtype(config["dtype"])),
            parse_hidden(config["hidden"]),
            activation=config["activation"],
            init_kind=config["init"],
            norm=config["norm"],
            dropout=config["dropout"],
            l1=config["l1"],
            l2=config["l2"],
        )
