"""MNIST-1D problems (:mod:`optbench.problems.mnist1d_data`): an MLP and a CNN on the
40-sample signals, the data set's benchmarks (its paper: 68% test accuracy for an MLP, 94% for
a CNN, 32% for logistic regression)."""

from types import MappingProxyType

import numpy as np

from .. import init, nn
from .base import DTYPES, Option
from .data import Split
from .mlp import Network, classifier_options
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
            **classifier_options("100,100"),
            "dtype": Option("float32", str, "dtype of data, parameters and computation", DTYPES),
        }
    )
    n_outputs = 10

    def __init__(self, seed=0, **options):
        super().__init__(seed, **options)
        self._build_from_options(mnist1d_split(np.dtype(self.config["dtype"])))


class Mnist1dCNN(Network):
    """MNIST-1D and the data set's CNN: three convolutions of ``channels`` filters (kernel 5,
    then 3 and 3; stride 2 and padding 1 each, so 40 samples become 19, 10, then 5), ReLU after
    each, and a linear head from the ``channels`` x 5 features to the 10 classes
    (:func:`optbench.nn.conv1d`, torch's layouts). Filters are He normal over their fan-in
    ``C_in K``, the head He normal too; biases start at 0."""

    name = "mnist1d_cnn"
    description = (
        "MNIST-1D signals, CNN of 3 conv1d layers (25 filters, stride 2) and a linear head"
    )
    options = MappingProxyType(
        {
            "channels": Option(25, int, "filters per convolution", low=1),
            "l2": Option(0.0, float, "L2 penalty l2/2 * sum W^2 on the weights", low=0),
            "dtype": Option("float32", str, "dtype of data, parameters and computation", DTYPES),
        }
    )
    n_outputs = 10
    # (kernel size, stride, padding) of each convolution
    CONVOLUTIONS = ((5, 2, 1), (3, 2, 1), (3, 2, 1))

    def __init__(self, seed=0, **options):
        super().__init__(seed, **options)
        config = self.config
        split = mnist1d_split(np.dtype(config["dtype"]))
        self.dtype, self.split, self.n_train = split.x_train.dtype, split, split.y_train.size
        self.channels = config["channels"]
        length = split.x_train.shape[1]
        for kernel_size, stride, padding in self.CONVOLUTIONS:
            length = (length + 2 * padding - kernel_size) // stride + 1
        self.features = self.channels * length
        self.n_params = 2 * len(self.CONVOLUTIONS) + 2
        self.sizes = (split.x_train.shape[1], self.n_outputs)
        self.norm, self.dropout, self.l1, self.l2 = "none", 0.0, 0.0, config["l2"]
        self.min_batch_size = 1
        self.last_layer_grad_norms = []
        self._reset_state()

    def initial_params(self):
        self._reset_state()
        rng = self.rng(1)
        params, channels_in = [], 1
        for kernel_size, _, _ in self.CONVOLUTIONS:
            shape = (channels_in, self.channels, kernel_size)  # optbench.init's (in, out, K)
            weight = init.he_normal(shape, rng, dtype=self.dtype).transpose(1, 0, 2)
            params += [np.ascontiguousarray(weight), np.zeros(self.channels, self.dtype)]
            channels_in = self.channels
        head = init.he_normal((self.features, self.n_outputs), rng, dtype=self.dtype)
        return [*params, head, np.zeros(self.n_outputs, self.dtype)]

    def _forward(self, params, x, training, rng=None):
        h, tape = x[:, None, :], []
        for index, (_, stride, padding) in enumerate(self.CONVOLUTIONS):
            weight, bias = params[2 * index], params[2 * index + 1]
            y, conv_ctx = nn.conv1d(h, weight, bias, stride=stride, padding=padding)
            h, relu_ctx = nn.relu(y)
            tape.append((conv_ctx, relu_ctx))
        flat = h.reshape(len(h), -1)
        logits = flat @ params[-2]
        logits += params[-1]
        return logits, flat, tape

    def _backward(self, params, dlogits, flat, tape):
        grads = [None] * self.n_params
        grads[-2] = flat.T @ dlogits
        grads[-1] = dlogits.sum(axis=0)
        dh = (dlogits @ params[-2].T).reshape(len(flat), self.channels, -1)
        for index in range(len(self.CONVOLUTIONS) - 1, -1, -1):
            conv_ctx, relu_ctx = tape[index]
            dy = nn.relu_backward(dh, relu_ctx)
            dh, grads[2 * index], grads[2 * index + 1] = nn.conv1d_backward(dy, conv_ctx)
        return grads

    def _weights(self):
        return [*range(0, 2 * len(self.CONVOLUTIONS), 2), self.n_params - 2]
