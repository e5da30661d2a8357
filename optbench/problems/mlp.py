"""Multi-layer perceptrons trained by hand-written backpropagation through :mod:`optbench.nn`:
the XOR network, the digits classifier and the deep sigmoid network of vanishing gradients.

A hidden layer is ``h' = dropout(act(norm(h @ W + b)))`` with the weight stored ``(in, out)``;
with a norm (BatchNorm or LayerNorm) the layer has no bias ``b``, the norm's affine ``beta``
takes its place. The output layer is ``logits = h @ W + b``, scored by softmax cross-entropy
(``nn.cross_entropy``) or, for one output, the logistic loss. The parameter list holds, per
hidden layer, ``W`` then ``b`` (no norm) or ``gamma, beta`` (norm), and finally the output
``W, b``. Every weight, the output layer's included, is drawn by the ``init`` option's
initializer; biases start at 0, BatchNorm/LayerNorm ``gamma`` at 1 and ``beta`` at 0.

Regularization acts on the weights ``W`` only: the training loss adds
``l1 * sum|W| + l2/2 * sum W^2`` and the gradient ``l1 * sign(W) + l2 * W``.
"""

import functools
from types import MappingProxyType

import numpy as np

from .. import init, nn
from .base import DTYPES, Batch, Evaluation, Option, Problem
from .data import SHIFTS, Split, digits_split
from .logistic import binary_cross_entropy_with_logits

LEAKY_RELU_SLOPE = 0.01
BATCH_NORM_MOMENTUM = 0.1

ACTIVATIONS = {
    "relu": (nn.relu, nn.relu_backward),
    "leaky_relu": (
        functools.partial(nn.leaky_relu, negative_slope=LEAKY_RELU_SLOPE),
        nn.leaky_relu_backward,
    ),
    "elu": (nn.elu, nn.elu_backward),
    "tanh": (nn.tanh, nn.tanh_backward),
    "sigmoid": (nn.sigmoid, nn.sigmoid_backward),
}
INITS = ("he", "glorot", "lecun")
NORMS = ("none", "batch", "layer")


def init_weight(kind, shape, rng, activation, dtype):
    """A weight ``(in, out)``: He normal (with the leaky ReLU's slope), Glorot uniform or
    LeCun normal (:mod:`optbench.init`)."""
    if kind == "he":
        slope = LEAKY_RELU_SLOPE if activation == "leaky_relu" else 0.0
        return init.he_normal(shape, rng, negative_slope=slope, dtype=dtype)
    if kind == "glorot":
        return init.glorot_uniform(shape, rng, dtype=dtype)
    return init.lecun_normal(shape, rng, dtype=dtype)


def parse_hidden(text):
    """``"128,64"`` -> ``(128, 64)``; a ``ValueError`` unless one or more positive ints."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError("expected comma-separated layer widths such as 128,64") from None
    if min(sizes) < 1:
        raise ValueError("layer widths must be >= 1")
    return sizes


class _Layer:
    """Positions in the parameter list of one layer's arrays (``None`` where absent)."""

    def __init__(self, weight, bias=None, gamma=None, beta=None):
        self.weight, self.bias, self.gamma, self.beta = weight, bias, gamma, beta


class Network(Problem):
    """An MLP classifier on a :class:`~optbench.problems.data.Split`; subclasses call
    :meth:`_build` from ``__init__``.

    Attributes
    ----------
    last_layer_grad_norms : list of float
        ``||dL/dW||_2`` of every layer's weight, input layer first, from the most recent
        :meth:`loss_and_grad` (regularization included); empty before the first call.
    running_stats : list of (mean, var) array pairs
        BatchNorm's running statistics per hidden layer (``norm="batch"``), reset by
        :meth:`initial_params`, updated by every training step with momentum 0.1, read by
        :meth:`evaluate`.
    """

    classifier = True
    n_outputs: int

    def _build(self, split, hidden, *, activation, init_kind, norm, dropout=0.0, l1=0.0, l2=0.0):
        self.dtype = split.x_train.dtype
        self.split = split
        self.n_train = split.y_train.size
        self.sizes = (split.x_train.shape[1], *hidden, self.n_outputs)
        self.activation, self.init_kind, self.norm = activation, init_kind, norm
        self.dropout, self.l1, self.l2 = dropout, l1, l2
        self._forward_act, self._backward_act = ACTIVATIONS[activation]
        self.min_batch_size = 2 if norm == "batch" else 1
        self.hidden_layers, position = [], 0
        for _ in hidden:
            if norm == "none":
                self.hidden_layers.append(_Layer(position, bias=position + 1))
                position += 2
            else:
                self.hidden_layers.append(_Layer(position, gamma=position + 1, beta=position + 2))
                position += 3
        self.output_layer = _Layer(position, bias=position + 1)
        self.n_params = position + 2
        self.last_layer_grad_norms = []
        self._reset_state()

    def _build_from_options(self, split):
        """:meth:`_build` from the options of :func:`classifier_options`."""
        config = self.config
        self._build(
            split,
            parse_hidden(config["hidden"]),
            activation=config["activation"],
            init_kind=config["init"],
            norm=config["norm"],
            dropout=config["dropout"],
            l1=config["l1"],
            l2=config["l2"],
        )

    def _reset_state(self):
        self.running_stats = [
            (np.zeros(width, self.dtype), np.ones(width, self.dtype)) for width in self.sizes[1:-1]
        ]
        self._batch_rng = self.rng(2)

    def _batch_size_reason(self):
        return " (BatchNorm needs 2 examples per batch)" if self.norm == "batch" else ""

    # ------------------------------------------------------------------ parameters and data
    def initial_params(self):
        self._reset_state()
        rng = self.rng(1)
        params = []
        for fan_in, fan_out in zip(self.sizes[:-2], self.sizes[1:-1], strict=True):
            params.append(
                init_weight(self.init_kind, (fan_in, fan_out), rng, self.activation, self.dtype)
            )
            if self.norm == "none":
                params.append(np.zeros(fan_out, self.dtype))
            else:
                params += [np.ones(fan_out, self.dtype), np.zeros(fan_out, self.dtype)]
        params.append(init_weight(self.init_kind, self.sizes[-2:], rng, "linear", self.dtype))
        params.append(np.zeros(self.sizes[-1], self.dtype))
        return params

    def _batch_inputs(self, indices):
        return self.split.x_train[indices]

    def batch(self, indices):
        """Inputs and labels at ``indices``, with a dropout key drawn from the problem's batch
        stream (seeded, restarted by :meth:`initial_params`) when ``dropout > 0``."""
        x = self._batch_inputs(indices)
        key = int(self._batch_rng.integers(2**63)) if self.dropout > 0 else None
        return Batch(x, self.split.y_train[indices], key)

    # ------------------------------------------------------------------ forward and backward
    def _forward(self, params, x, training, rng=None):
        """Logits and, per hidden layer, what its backward pass needs."""
        tape = []
        h = x
        for index, layer in enumerate(self.hidden_layers):
            pre = h @ params[layer.weight]
            norm_ctx = dropout_ctx = None
            if layer.bias is not None:
                pre += params[layer.bias]
            elif self.norm == "batch":
                running_mean, running_var = self.running_stats[index]
                pre, norm_ctx = nn.batch_norm(
                    pre,
                    running_mean,
                    running_var,
                    params[layer.gamma],
                    params[layer.beta],
                    training=training,
                    momentum=BATCH_NORM_MOMENTUM,
                )
            else:
                pre, norm_ctx = nn.layer_norm(
                    pre, pre.shape[1], params[layer.gamma], params[layer.beta]
                )
            out, act_ctx = self._forward_act(pre)
            if training and self.dropout > 0:
                out, dropout_ctx = nn.dropout(out, self.dropout, True, rng)
            tape.append((h, norm_ctx, act_ctx, dropout_ctx))
            h = out
        output = self.output_layer
        logits = h @ params[output.weight]
        logits += params[output.bias]
        return logits, h, tape

    def _backward(self, params, dlogits, last_hidden, tape):
        grads = [None] * self.n_params
        output = self.output_layer
        grads[output.weight] = last_hidden.T @ dlogits
        grads[output.bias] = dlogits.sum(axis=0)
        dh = dlogits @ params[output.weight].T
        for index in range(len(self.hidden_layers) - 1, -1, -1):
            layer = self.hidden_layers[index]
            h, norm_ctx, act_ctx, dropout_ctx = tape[index]
            if dropout_ctx is not None:
                dh = nn.dropout_backward(dh, dropout_ctx)
            dpre = self._backward_act(dh, act_ctx)
            if layer.bias is not None:
                grads[layer.bias] = dpre.sum(axis=0)
            else:
                backward = (
                    nn.batch_norm_backward if self.norm == "batch" else nn.layer_norm_backward
                )
                dpre, grads[layer.gamma], grads[layer.beta] = backward(dpre, norm_ctx)
            grads[layer.weight] = h.T @ dpre
            if index:
                dh = dpre @ params[layer.weight].T
        return grads

    def _weights(self):
        return [layer.weight for layer in (*self.hidden_layers, self.output_layer)]

    def matrix_positions(self):
        """Every weight of :meth:`_weights` (which ends with the output layer's) but the output
        layer's."""
        return tuple(self._weights()[:-1])

    def _penalty(self, params, grads=None):
        """``l1 sum|W| + l2/2 sum W^2`` over the weights; adds its gradient to ``grads``."""
        if not (self.l1 or self.l2):
            return 0.0
        total = 0.0
        l1, l2 = self.dtype.type(self.l1), self.dtype.type(self.l2)
        for position in self._weights():
            weight = params[position]
            total += self.l1 * float(np.abs(weight).sum()) + 0.5 * self.l2 * float(
                np.vdot(weight, weight)
            )
            if grads is not None:
                grads[position] += l1 * np.sign(weight) + l2 * weight
        return total

    def _data_loss(self, logits, targets):
        """Mean loss of the logits and its gradient with respect to them."""
        if self.n_outputs == 1:
            loss, dlogits = binary_cross_entropy_with_logits(logits[:, 0], targets)
            return loss, dlogits.reshape(logits.shape)
        loss, ctx = nn.cross_entropy(logits, targets)
        return float(loss), nn.cross_entropy_backward(1.0, ctx)

    def loss_and_grad(self, params, batch):
        self._unpack(params, self.n_params)
        rng = np.random.default_rng(batch.key) if batch.key is not None else None
        logits, last_hidden, tape = self._forward(params, batch.x, True, rng)
        loss, dlogits = self._data_loss(logits, batch.targets)
        grads = self._backward(params, dlogits, last_hidden, tape)
        loss += self._penalty(params, grads)
        self.last_layer_grad_norms = [
            float(np.sqrt(np.vdot(grads[position], grads[position])))
            for position in self._weights()
        ]
        return loss, grads

    # ------------------------------------------------------------------ evaluation
    def _predict(self, params, x):
        return self._forward(params, x, False)[0]

    def _accuracy(self, logits, targets):
        if self.n_outputs == 1:
            return float(np.mean((logits[:, 0] > 0) == (targets == 1)))
        return float(np.mean(np.argmax(logits, axis=1) == targets))

    def evaluate(self, params):
        """Training objective (data loss + penalty on the whole training set) and test loss
        and accuracy, in eval mode: no dropout, BatchNorm with its running statistics."""
        self._unpack(params, self.n_params)
        split = self.split
        train_logits = self._predict(params, split.x_train)
        train_loss, _ = self._data_loss(train_logits, split.y_train)
        test_logits = self._predict(params, split.x_test)
        test_loss, _ = self._data_loss(test_logits, split.y_test)
        return Evaluation(
            train_loss + self._penalty(params),
            test_loss,
            self._accuracy(test_logits, split.y_test),
            self._accuracy(train_logits, split.y_train),
        )


_ACTIVATION_NAMES = tuple(ACTIVATIONS)


def classifier_options(hidden):
    """The options of an MLP classifier (:meth:`Network._build_from_options`), in display
    order, its hidden layer widths ``hidden`` by default."""
    return {
        "hidden": Option(
            hidden, str, "hidden layer widths, comma-separated", validate=parse_hidden
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
    }


class XorMLP(Network):
    """The XOR truth table (inputs 0/1, four rows) with a 2-4-1 network: one hidden layer of
    4 units, one logit scored by the logistic loss, Glorot-uniform weights. There is nothing
    to generalize to: the "test" set is the truth table itself, and the problem is solved when
    its accuracy is 1."""

    name = "xor_mlp"
    description = "XOR truth table, 2-4-1 MLP with a logistic output; solved at accuracy 1"
    options = MappingProxyType(
        {
            "activation": Option("tanh", str, "hidden activation", _ACTIVATION_NAMES),
            "dtype": Option("float64", str, "dtype of data, parameters and computation", DTYPES),
        }
    )
    n_outputs = 1

    def __init__(self, seed=0, **options):
        super().__init__(seed, **options)
        dtype = np.dtype(self.config["dtype"])
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype)
        y = np.array([0, 1, 1, 0], np.int64)
        split = Split(x, y, x.copy(), y.copy())
        self._build(
            split, (4,), activation=self.config["activation"], init_kind="glorot", norm="none"
        )


class DigitsMLP(Network):
    """scikit-learn's 8x8 digits (1,797 images, 10 classes), a seeded stratified 25% test
    split, pixels standardized with training statistics, and an MLP 64-128-64-10 (by default:
    ReLU, He init, softmax cross-entropy).

    ``augment`` moves each training image of a batch by one pixel (up, down, left or right)
    or not at all, each with probability 1/5, drawn from the problem's seeded batch stream;
    the pixels are then standardized with the statistics of all shifted training images.
    Max-norm regularization is the optimizers' ``max_norm`` extra (``--opt max_norm=3``): it
    caps every column of each (in, out) weight, i.e. each unit's incoming weights.
    The default dtype is float32: Adam (lr 1e-3, batch 32, 20 epochs) reaches a median test
    accuracy of 97.6% over seeds 0-2 (float64: 98.0%, within the 97.1-98.0% spread between
    seeds), and a training step takes 150 us instead of 205 us (measured on 2 cores).
    """

    name = "digits_mlp"
    description = (
        "8x8 digits, MLP 64-128-64-10 (ReLU, He init); max-norm: the optimizers' max_norm extra"
    )
    options = MappingProxyType(
        {
            **classifier_options("128,64"),
            "augment": Option(False, bool, "random one-pixel shifts of the training images"),
            "dtype": Option("float32", str, "dtype of data, parameters and computation", DTYPES),
        }
    )
    n_outputs = 10

    def __init__(self, seed=0, **options):
        super().__init__(seed, **options)
        config = self.config
        self.data = digits_split(self.rng(0), np.dtype(config["dtype"]), augment=config["augment"])
        self.augment = config["augment"]
        self._build_from_options(self.data.split)

    def _batch_inputs(self, indices):
        if not self.augment:
            return self.split.x_train[indices]
        shifts = self._batch_rng.integers(len(SHIFTS), size=len(indices))
        return self.data.shifted_train[shifts, indices]


class DeepSigmoidMLP(Network):
    """A deep narrow MLP on the digits data (the split of :class:`DigitsMLP`): ``depth``
    hidden layers of ``width`` units, sigmoid and Glorot init by default.

    Backpropagation multiplies the gradient by ``sigmoid' <= 1/4`` at every layer, so the
    gradient norms of the first layers are orders of magnitude below those of the last
    (``last_layer_grad_norms``); ``activation=relu init=he`` or ``norm=batch`` cure it.
    """

    name = "deep_sigmoid_mlp"
    description = "deep narrow sigmoid MLP on the digits: vanishing gradients, and their cures"
    options = MappingProxyType(
        {
            "depth": Option(10, int, "number of hidden layers", low=1),
            "width": Option(32, int, "units per hidden layer", low=1),
            "activation": Option("sigmoid", str, "hidden activation", _ACTIVATION_NAMES),
            "init": Option("glorot", str, "weight initializer", INITS),
            "norm": Option("none", str, "normalization before each activation", NORMS),
            "dtype": Option("float32", str, "dtype of data, parameters and computation", DTYPES),
        }
    )
    n_outputs = 10

    def __init__(self, seed=0, **options):
        super().__init__(seed, **options)
        config = self.config
        data = digits_split(self.rng(0), np.dtype(config["dtype"]))
        self._build(
            data.split,
            (config["width"],) * config["depth"],
            activation=config["activation"],
            init_kind=config["init"],
            norm=config["norm"],
        )
