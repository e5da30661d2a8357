"""Binary classification: the logistic loss, and L2-regularized logistic regression on a
synthetic standardized data set."""

from types import MappingProxyType

import numpy as np

from .base import DTYPES, Batch, Evaluation, Option, Problem
from .data import synthetic_logistic


def sigmoid(z):
    """``1 / (1 + exp(-z))`` as ``(1 + tanh(z / 2)) / 2``: no overflow for any finite z."""
    return 0.5 * (1 + np.tanh(0.5 * z))


def binary_cross_entropy_with_logits(logits, targets):
    """Mean logistic loss and its gradient with respect to ``logits``.

    ``loss = mean(softplus(z) - y z)`` with ``softplus(z) = max(z, 0) + log1p(exp(-|z|))``
    (stable for any finite z); ``dloss/dz = (sigmoid(z) - y) / n``. ``logits`` and 0/1
    ``targets`` have the same shape; the loss is a float, the gradient has the logits' dtype.
    """
    targets = targets.astype(logits.dtype)
    losses = np.maximum(logits, 0) - targets * logits + np.log1p(np.exp(-np.abs(logits)))
    n = logits.size
    return float(losses.sum(dtype=np.float64)) / n, (sigmoid(logits) - targets) / n


class LogisticRegression(Problem):
    """``L(w, b) = mean_i logloss(x_i . w + b, y_i) + l2/2 ||w||^2`` on the data of
    :func:`optbench.problems.data.synthetic_logistic` (75% train, 25% test), convex; the
    parameters ``[w (features,), b (1,)]`` start at 0."""

    name = "logistic_regression"
    description = "L2-regularized logistic regression on a synthetic standardized data set"
    classifier = True
    options = MappingProxyType(
        {
            "n_samples": Option(1000, int, "examples in the data set (25% held out)", low=8),
            "features": Option(20, int, "number of features", low=1),
            "l2": Option(0.0, float, "L2 penalty l2/2 ||w||^2 (not on the bias)", low=0),
            "dtype": Option("float64", str, "dtype of data, parameters and computation", DTYPES),
        }
    )

    def __init__(self, seed=0, **options):
        super().__init__(seed, **options)
        self.dtype = np.dtype(self.config["dtype"])
        self.data = synthetic_logistic(
            self.rng(0), self.config["n_samples"], self.config["features"], self.dtype
        )
        self.n_train = self.data.y_train.size
        self.l2 = self.config["l2"]

    def initial_params(self):
        return [np.zeros(self.config["features"], self.dtype), np.zeros(1, self.dtype)]

    def batch(self, indices):
        return Batch(self.data.x_train[indices], self.data.y_train[indices])

    def _objective(self, params, x, targets):
        weights, bias = self._unpack(params, 2)
        loss, dlogits = binary_cross_entropy_with_logits(x @ weights + bias, targets)
        return loss + 0.5 * self.l2 * float(weights @ weights), dlogits

    def loss_and_grad(self, params, batch):
        weights, _ = self._unpack(params, 2)
        loss, dlogits = self._objective(params, batch.x, batch.targets)
        grad_weights = batch.x.T @ dlogits
        if self.l2:
            grad_weights += self.dtype.type(self.l2) * weights
        return loss, [grad_weights, np.array([dlogits.sum()], self.dtype)]

    def evaluate(self, params):
        data = self.data
        train_loss, _ = self._objective(params, data.x_train, data.y_train)
        weights, bias = self._unpack(params, 2)
        test_logits = data.x_test @ weights + bias
        test_loss, _ = binary_cross_entropy_with_logits(test_logits, data.y_test)
        accuracy = float(np.mean((test_logits > 0) == (data.y_test == 1)))
        train_logits = data.x_train @ weights + bias
        train_accuracy = float(np.mean((train_logits > 0) == (data.y_train == 1)))
        return Evaluation(train_loss, test_loss, accuracy, train_accuracy)
