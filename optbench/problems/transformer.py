"""Modular addition with a small transformer: the grokking task.

Every pair ``(a, b)`` of residues modulo ``p`` is a sequence of three tokens ``a, b, =`` (the
token ``=`` is ``p``); the label is ``(a + b) mod p``. A seeded fraction of the ``p^2`` pairs
is the training set, the rest the test set. On so few examples the network first memorizes
(training accuracy 1, test accuracy near chance) and, with weight decay, later generalizes:
test accuracy jumps to 1 long after training accuracy did (Power et al. 2022, "grokking").

The network is a pre-LayerNorm decoder, torch's layouts and formulas::

    h = embed[tokens] + position                       (N, 3, d)
    per layer:  h = h + attention(layer_norm(h)) W_o + b_o
                h = h + gelu(layer_norm(h) W_1 + b_1) W_2 + b_2
    logits = layer_norm(h[:, -1]) W_U + b_U            (N, p)

Attention is causal, with ``heads`` heads of ``d / heads`` dimensions and the query, key and
value projections in one matrix ``W_qkv (d, 3d)`` (columns: queries, keys, values, each split
into heads in order). Weights are stored ``(in, out)``. The parameter list, in order: the token
embedding ``(p + 1, d)``, the position embedding ``(3, d)``; per layer ``ln1 gain, ln1 bias,
W_qkv, b_qkv, W_o, b_o, ln2 gain, ln2 bias, W_1, b_1, W_2, b_2``; the final LayerNorm's gain and
bias; ``W_U (d, p)``, ``b_U``. Initialization: embeddings N(0, 1) (as ``torch.nn.Embedding``),
weights LeCun normal (standard deviation ``1 / sqrt(fan_in)``), biases 0, LayerNorm gains 1.
"""

from types import MappingProxyType

import numpy as np

from .. import init, nn
from .base import DTYPES, Option
from .data import Split
from .mlp import Network

SEQUENCE_LENGTH = 3
# positions of a layer's arrays among its 12, in the order of the parameter list
LAYER_ARRAYS = (
    "ln1_gain",
    "ln1_bias",
    "w_qkv",
    "b_qkv",
    "w_o",
    "b_o",
    "ln2_gain",
    "ln2_bias",
    "w_1",
    "b_1",
    "w_2",
    "b_2",
)
_AT = {name: index for index, name in enumerate(LAYER_ARRAYS)}


def modular_addition_split(modulus, train_fraction, rng):
    """Every pair ``(a, b)`` as tokens ``(a, b, modulus)`` with label ``(a + b) % modulus``,
    shuffled by ``rng``; the first ``round(train_fraction p^2)`` pairs train, the rest test.
    Inputs are int64 token arrays ``(pairs, 3)``."""
    a, b = np.divmod(np.arange(modulus * modulus), modulus)
    tokens = np.stack([a, b, np.full_like(a, modulus)], axis=1)
    labels = (a + b) % modulus
    order = rng.permutation(len(labels))
    n_train = round(train_fraction * len(labels))
    train, test = order[:n_train], order[n_train:]
    return Split(tokens[train], labels[train], tokens[test], labels[test])


def _check_heads(config):
    if config["d_model"] % config["heads"]:
        raise ValueError(
            f"problem option heads={config['heads']!r}: must divide d_model={config['d_model']}"
        )


class ModularAddition(Network):
    """(a + b) mod p on a seeded fraction of the pairs, a one-layer transformer (by default
    p = 97, 30% of the pairs, d = 128, 4 heads, MLP 512, GELU, pre-LayerNorm); see the module
    docstring. The task of grokking: AdamW with weight decay generalizes, Adam without it
    memorizes. Evaluated every ``epochs_per_evaluation`` epochs: an epoch is a few steps."""

    name = "modular_addition"
    description = "(a + b) mod 97 from 30% of the pairs, 1-layer transformer: grokking"
    options = MappingProxyType(
        {
            "modulus": Option(97, int, "the modulus p (vocabulary p + 1 tokens)", low=2),
            "train_fraction": Option(
                0.3,
                float,
                "fraction of the p^2 pairs used for training",
                low=0,
                high=1,
                low_open=True,
                high_open=True,
            ),
            "d_model": Option(128, int, "width of the residual stream", low=1),
            "heads": Option(4, int, "attention heads (must divide d_model)", low=1),
            "d_mlp": Option(512, int, "width of the MLP's hidden layer", low=1),
            "layers": Option(1, int, "transformer blocks", low=1),
            "l2": Option(0.0, float, "L2 penalty l2/2 * sum W^2 on the weights", low=0),
            "dtype": Option("float32", str, "dtype of data, parameters and computation", DTYPES),
        }
    )
    epochs_per_evaluation = 10

    def __init__(self, seed=0, **options):
        super().__init__(seed, **options)
        config = self.config
        _check_heads(config)
        modulus = config["modulus"]
        split = modular_addition_split(modulus, config["train_fraction"], self.rng(0))
        if not 0 < split.y_train.size < modulus * modulus:
            raise ValueError(
                f"problem option train_fraction={config['train_fraction']!r}: leaves no "
                f"training or no test pair of the {modulus * modulus}"
            )
        self.dtype = np.dtype(config["dtype"])
        self.split, self.n_train = split, split.y_train.size
        self.n_outputs = modulus
        self.d_model, self.heads, self.d_mlp = config["d_model"], config["heads"], config["d_mlp"]
        self.layers = config["layers"]
        self.n_params = 2 + len(LAYER_ARRAYS) * self.layers + 4
        self.sizes = (SEQUENCE_LENGTH, self.n_outputs)
        self.norm, self.dropout, self.l1, self.l2 = "none", 0.0, 0.0, config["l2"]
        self.min_batch_size = 1
        self.last_layer_grad_norms = []
        self._reset_state()

    def _layer(self, index):
        """Position of layer ``index``'s first array in the parameter list."""
        return 2 + len(LAYER_ARRAYS) * index

    def initial_params(self):
        self._reset_state()
        rng, dtype, d = self.rng(1), self.dtype, self.d_model
        params = [
            rng.standard_normal((self.n_outputs + 1, d)).astype(dtype),
            rng.standard_normal((SEQUENCE_LENGTH, d)).astype(dtype),
        ]
        for _ in range(self.layers):
            params += [
                np.ones(d, dtype),
                np.zeros(d, dtype),
                init.lecun_normal((d, 3 * d), rng, dtype=dtype),
                np.zeros(3 * d, dtype),
                init.lecun_normal((d, d), rng, dtype=dtype),
                np.zeros(d, dtype),
                np.ones(d, dtype),
                np.zeros(d, dtype),
                init.lecun_normal((d, self.d_mlp), rng, dtype=dtype),
                np.zeros(self.d_mlp, dtype),
                init.lecun_normal((self.d_mlp, d), rng, dtype=dtype),
                np.zeros(d, dtype),
            ]
        params += [
            np.ones(d, dtype),
            np.zeros(d, dtype),
            init.lecun_normal((d, self.n_outputs), rng, dtype=dtype),
            np.zeros(self.n_outputs, dtype),
        ]
        return params

    # ------------------------------------------------------------------ forward and backward
    def _attention(self, params, at, a):
        """Causal multi-head attention of the normalized stream ``a (N, T, d)``, projected."""
        samples, length, d = a.shape
        heads = self.heads
        qkv = a.reshape(-1, d) @ params[at + _AT["w_qkv"]]
        qkv += params[at + _AT["b_qkv"]]
        # (N, T, 3, H, d/H) -> three (N, H, T, d/H) stacks
        split = qkv.reshape(samples, length, 3, heads, d // heads).transpose(2, 0, 3, 1, 4)
        mixed, attention_ctx = nn.scaled_dot_product_attention(
            split[0], split[1], split[2], is_causal=True
        )
        merged = np.ascontiguousarray(mixed.transpose(0, 2, 1, 3)).reshape(-1, d)
        out = merged @ params[at + _AT["w_o"]]
        out += params[at + _AT["b_o"]]
        return out.reshape(a.shape), (a, attention_ctx, merged)

    def _attention_backward(self, params, at, dout, saved, grads):
        a, attention_ctx, merged = saved
        samples, length, d = a.shape
        flat = dout.reshape(-1, d)
        grads[at + _AT["w_o"]] = merged.T @ flat
        grads[at + _AT["b_o"]] = flat.sum(axis=0)
        dmerged = (flat @ params[at + _AT["w_o"]].T).reshape(samples, length, self.heads, -1)
        dq, dk, dv = nn.scaled_dot_product_attention_backward(
            dmerged.transpose(0, 2, 1, 3), attention_ctx
        )
        # three (N, H, T, d/H) -> (N, T, 3, H, d/H) -> (N T, 3d)
        dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(-1, 3 * d)
        grads[at + _AT["w_qkv"]] = a.reshape(-1, d).T @ dqkv
        grads[at + _AT["b_qkv"]] = dqkv.sum(axis=0)
        return (dqkv @ params[at + _AT["w_qkv"]].T).reshape(a.shape)

    def _mlp(self, params, at, m):
        d = self.d_model
        hidden = m.reshape(-1, d) @ params[at + _AT["w_1"]]
        hidden += params[at + _AT["b_1"]]
        activated, gelu_ctx = nn.gelu(hidden)
        out = activated @ params[at + _AT["w_2"]]
        out += params[at + _AT["b_2"]]
        return out.reshape(m.shape), (m, gelu_ctx, activated)

    def _mlp_backward(self, params, at, dout, saved, grads):
        m, gelu_ctx, activated = saved
        d = self.d_model
        flat = dout.reshape(-1, d)
        grads[at + _AT["w_2"]] = activated.T @ flat
        grads[at + _AT["b_2"]] = flat.sum(axis=0)
        dhidden = nn.gelu_backward(flat @ params[at + _AT["w_2"]].T, gelu_ctx)
        grads[at + _AT["w_1"]] = m.reshape(-1, d).T @ dhidden
        grads[at + _AT["b_1"]] = dhidden.sum(axis=0)
        return (dhidden @ params[at + _AT["w_1"]].T).reshape(m.shape)

    def _forward(self, params, x, training, rng=None):
        d = self.d_model
        h, embedding_ctx = nn.embedding(x, params[0])
        h += params[1]
        tape = [embedding_ctx]
        for index in range(self.layers):
            at = self._layer(index)
            a, ln1_ctx = nn.layer_norm(h, d, params[at], params[at + 1])
            attended, attention_saved = self._attention(params, at, a)
            h = h + attended
            m, ln2_ctx = nn.layer_norm(h, d, params[at + 6], params[at + 7])
            transformed, mlp_saved = self._mlp(params, at, m)
            h = h + transformed
            tape.append((ln1_ctx, attention_saved, ln2_ctx, mlp_saved))
        last = np.ascontiguousarray(h[:, -1])
        final, final_ctx = nn.layer_norm(last, d, params[-4], params[-3])
        logits = final @ params[-2]
        logits += params[-1]
        tape.append(final_ctx)
        return logits, final, tape

    def _backward(self, params, dlogits, final, tape):
        grads = [None] * self.n_params
        grads[-2] = final.T @ dlogits
        grads[-1] = dlogits.sum(axis=0)
        dlast, grads[-4], grads[-3] = nn.layer_norm_backward(dlogits @ params[-2].T, tape[-1])
        embedding_ctx = tape[0]
        dh = np.zeros((*embedding_ctx.shape, self.d_model), self.dtype)
        dh[:, -1] = dlast
        for index in range(self.layers - 1, -1, -1):
            at = self._layer(index)
            ln1_ctx, attention_saved, ln2_ctx, mlp_saved = tape[1 + index]
            dm = self._mlp_backward(params, at, dh, mlp_saved, grads)
            dm, grads[at + 6], grads[at + 7] = nn.layer_norm_backward(dm, ln2_ctx)
            dh = dh + dm
            da = self._attention_backward(params, at, dh, attention_saved, grads)
            da, grads[at], grads[at + 1] = nn.layer_norm_backward(da, ln1_ctx)
            dh = dh + da
        grads[1] = dh.sum(axis=0)
        grads[0] = nn.embedding_backward(dh, embedding_ctx)
        return grads

    def _weights(self):
        """The weight matrices: the projections and MLP weights of every layer, then W_U."""
        positions = []
        for index in range(self.layers):
            at = self._layer(index)
            positions += [at + _AT[name] for name in ("w_qkv", "w_o", "w_1", "w_2")]
        return [*positions, self.n_params - 2]
