"""PyTorch versions of optbench's networks: the peer of an end-to-end training step.

:func:`torch_network` builds, from an optbench problem and a list of its parameters, the same
network with ``torch.nn.functional``: the same layers, formulas, parameter layouts ((in, out)
weights, torch's convolution and attention layouts) and loss (mean cross-entropy plus the
problem's ``l1 sum|W| + l2/2 sum W^2`` on the same weights). Its parameters are leaf tensors
in optbench's order, so that a gradient of one matches the gradient of the other element for
element, and so that ``torch.optim`` steps the same arrays an optbench optimizer steps.

Covered: the MLP classifiers (``digits_mlp``, ``mnist1d_mlp``, ``deep_sigmoid_mlp``, with any
activation, initialization, normalization and penalty; not dropout, whose masks cannot be
matched), ``mnist1d_cnn`` and ``modular_addition``. torch is imported when a network is built,
never at import: it is an optional peer.
"""

import itertools

import numpy as np

from . import optim
from .problems.mlp import BATCH_NORM_MOMENTUM, Network
from .problems.mnist1d import Mnist1dCNN
from .problems.transformer import _AT, ModularAddition

# optbench.problems.mlp's activation names -> torch.nn.functional names
_ACTIVATIONS = {
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "elu": "elu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
}


class TorchNetwork:
    """A problem's network in torch: ``parameters`` (leaf tensors, optbench's order) and
    ``loss(x, targets)``, the mean training loss of a batch (a 0-d tensor with its graph)."""

    def __init__(self, problem, parameters, forward, torch):
        self.problem = problem
        self.parameters = parameters
        self._forward = forward
        self._torch = torch
        self._weights = [parameters[i] for i in problem._weights()]

    def logits(self, x):
        """The training-mode logits of the inputs ``x`` (a tensor)."""
        return self._forward(x)

    def loss(self, x, targets):
        """Mean cross-entropy of the batch plus the problem's penalty on its weights."""
        torch, problem = self._torch, self.problem
        loss = torch.nn.functional.cross_entropy(self._forward(x), targets)
        if problem.l1:
            loss = loss + problem.l1 * sum(w.abs().sum() for w in self._weights)
        if problem.l2:
            loss = loss + 0.5 * problem.l2 * sum((w * w).sum() for w in self._weights)
        return loss


def torch_network(problem, params, torch=None):
    """The network of ``problem`` in torch, its parameters copies of ``params`` (arrays in
    the problem's order, as ``problem.initial_params()`` gives).

    Raises ``TypeError`` for a problem without a torch version and ``ValueError`` naming the
    option it cannot match (dropout), before copying anything.
    """
    if torch is None:
        import torch
    forward = _forward_builder(problem)
    if len(params) != problem.n_params:
        raise ValueError(
            f"params holds {len(params)} arrays; {problem.name} has {problem.n_params}"
        )
    tensors = [torch.tensor(np.asarray(p)).requires_grad_() for p in params]
    return TorchNetwork(problem, tensors, forward(problem, tensors, torch), torch)


def _forward_builder(problem):
    if isinstance(problem, ModularAddition):
        return _transformer_forward
    if isinstance(problem, Mnist1dCNN):
        return _cnn_forward
    if isinstance(problem, Network) and hasattr(problem, "hidden_layers"):
        if problem.n_outputs < 2:
            raise TypeError(f"{problem.name} has no torch version (a binary output)")
        if problem.dropout:
            raise ValueError(
                f"problem option dropout={problem.dropout!r}: the torch version cannot draw "
                "optbench's masks; use dropout=0"
            )
        return _mlp_forward
    raise TypeError(f"{problem.name} has no torch version")


def _mlp_forward(problem, w, torch):
    functional = torch.nn.functional
    activation = getattr(functional, _ACTIVATIONS[problem.activation])
    running = [
        (torch.from_numpy(mean.copy()), torch.from_numpy(var.copy()))
        for mean, var in problem.running_stats
    ]

    def forward(x):
        h = x
        for index, layer in enumerate(problem.hidden_layers):
            if layer.bias is not None:
                pre = torch.addmm(w[layer.bias], h, w[layer.weight])
            elif problem.norm == "batch":
                mean, var = running[index]
                pre = functional.batch_norm(
                    h @ w[layer.weight], mean, var, w[layer.gamma], w[layer.beta],
                    training=True, momentum=BATCH_NORM_MOMENTUM,
                )  # fmt: skip
            else:
                pre = h @ w[layer.weight]
                pre = functional.layer_norm(pre, pre.shape[1:], w[layer.gamma], w[layer.beta])
            h = activation(pre)
        output = problem.output_layer
        return torch.addmm(w[output.bias], h, w[output.weight])

    return forward


def _cnn_forward(problem, w, torch):
    functional = torch.nn.functional

    def forward(x):
        h = x[:, None, :]
        for index, (_, stride, padding) in enumerate(problem.CONVOLUTIONS):
            h = functional.relu(
                functional.conv1d(h, w[2 * index], w[2 * index + 1], stride=stride, padding=padding)
            )
        return torch.addmm(w[-1], h.flatten(1), w[-2])

    return forward


def _transformer_forward(problem, w, torch):
    functional = torch.nn.functional
    d, heads = problem.d_model, problem.heads

    def forward(tokens):
        h = functional.embedding(tokens, w[0]) + w[1]
        samples, length = tokens.shape
        for index in range(problem.layers):
            at = problem._layer(index)
            a = functional.layer_norm(h, (d,), w[at], w[at + 1]).reshape(-1, d)
            qkv = torch.addmm(w[at + _AT["b_qkv"]], a, w[at + _AT["w_qkv"]])
            q, k, v = qkv.reshape(samples, length, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
            mixed = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            merged = mixed.transpose(1, 2).reshape(-1, d)
            attended = torch.addmm(w[at + _AT["b_o"]], merged, w[at + _AT["w_o"]])
            h = h + attended.reshape(samples, length, d)
            m = functional.layer_norm(h, (d,), w[at + 6], w[at + 7]).reshape(-1, d)
            hidden = functional.gelu(torch.addmm(w[at + _AT["b_1"]], m, w[at + _AT["w_1"]]))
            transformed = torch.addmm(w[at + _AT["b_2"]], hidden, w[at + _AT["w_2"]])
            h = h + transformed.reshape(samples, length, d)
        final = functional.layer_norm(h[:, -1], (d,), w[-4], w[-3])
        return torch.addmm(w[-1], final, w[-2])

    return forward


# --------------------------------------------------------------------------------------------
# one training step, optbench's and torch's
# --------------------------------------------------------------------------------------------
TRAINING_PROBLEMS = ("digits_mlp", "mnist1d_cnn", "modular_addition")
TRAINING_LR = 1e-3
TRAINING_BATCHES = 16


def training_steps(problem, batch_size, implementations=("optbench", "torch"), seed=0):
    """``{implementation: step}``: functions doing one training step of ``problem`` (a built
    problem) per call, cycling over ``TRAINING_BATCHES`` mini-batches of ``batch_size`` drawn
    from ``seed``: the forward pass, the loss, the backward pass and an Adam update at
    ``TRAINING_LR``. Each implementation trains its own copy of the initial parameters.

    "optbench": ``problem.loss_and_grad`` and ``optbench.optim.Adam``. "torch": the network of
    :func:`torch_network` and ``torch.optim.Adam(fused=True)`` (its fastest CPU Adam), the
    batches as tensors made beforehand. Each step is called once here (compiling the kernels).
    A step's ``params`` attribute holds the arrays (or tensors) it trains.
    """
    for implementation in implementations:
        if implementation not in ("optbench", "torch"):
            raise ValueError(f"implementations: {implementation!r} is not optbench or torch")
    rng = np.random.default_rng(seed)
    batches = []
    while len(batches) < TRAINING_BATCHES:
        batches += list(problem.batches(batch_size, rng))
    batches = batches[:TRAINING_BATCHES]
    steps = {}
    for implementation in implementations:
        if implementation == "optbench":
            steps[implementation] = _optbench_step(problem, batches)
        else:
            steps[implementation] = _torch_step(problem, batches)
        steps[implementation]()
    return steps


def _optbench_step(problem, batches):
    params = problem.initial_params()
    optimizer = optim.Adam(params, lr=TRAINING_LR)
    cycle = itertools.cycle(batches)

    def step():
        _, grads = problem.loss_and_grad(params, next(cycle))
        optimizer.step(grads)

    step.params = params
    return step


def _torch_step(problem, batches):
    import torch

    network = torch_network(problem, problem.initial_params(), torch)
    optimizer = torch.optim.Adam(network.parameters, lr=TRAINING_LR, fused=True)
    cycle = itertools.cycle(
        [(torch.from_numpy(b.x), torch.from_numpy(np.asarray(b.targets))) for b in batches]
    )

    def step():
        x, targets = next(cycle)
        optimizer.zero_grad(set_to_none=True)
        network.loss(x, targets).backward()
        optimizer.step()

    step.params = network.parameters
    return step
