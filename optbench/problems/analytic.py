"""Closed-form test functions: the ill-conditioned quadratic (exact and with gradient noise),
Rosenbrock, Beale and a saddle with quartic walls.

Each has one parameter array ``x`` (``d`` values), a known minimizer ``x_star`` and minimum
``optimum``, and no data (``n_train == 1``; the noisy quadratic is the exception, with a
virtual data set of noise vectors). Losses and gradients are computed in the parameters' dtype
(``dtype`` option, float64 by default) and the loss is returned as a Python float.
"""

import math
from types import MappingProxyType

import numpy as np

from .base import DTYPES, Evaluation, Option, Problem

_DTYPE = Option("float64", str, "dtype of the parameters and of the computation", DTYPES)


class _Analytic(Problem):
    """One parameter array ``x``; subclasses set ``x0`` and ``x_star`` and implement
    ``_loss_and_grad(x)`` (any dtype) and ``_loss_xy(x, y)`` (2-D, vectorized)."""

    x0: np.ndarray

    def __init__(self, seed=0, **options):
        super().__init__(seed, **options)
        self.dtype = np.dtype(self.config["dtype"])

    def initial_params(self):
        return [self.x0.astype(self.dtype)]

    def loss_and_grad(self, params, batch):
        (x,) = self._unpack(params, 1)
        loss, grad = self._loss_and_grad(x)
        return float(loss), [grad]

    def evaluate(self, params):
        (x,) = self._unpack(params, 1)
        return Evaluation(float(self._loss_and_grad(x)[0]), None, None)

    def distance_to_optimum(self, params):
        """``||x - x_star||_2`` in float64."""
        (x,) = self._unpack(params, 1)
        return float(np.linalg.norm(x.astype(np.float64) - self.x_star))

    def loss_grid(self, xs, ys):
        if self.bounds is None:
            return super().loss_grid(xs, ys)
        return self._loss_xy(*self._grid(xs, ys))


def _rotation(rng, d):
    """A uniformly (Haar) distributed rotation of R^d: Q of the QR factorization of a Gaussian
    matrix with the signs of R's diagonal moved into Q, reflected to determinant +1."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


class Quadratic(_Analytic):
    """``f(x) = 1/2 (x - x*)^T A (x - x*)`` with ``A = Q diag(lambda) Q^T``.

    The eigenvalues are ``d`` values log-spaced from ``mu = 1`` to ``L = kappa`` (both
    included), so ``kappa`` is the condition number of ``A``; ``Q`` is a seeded random rotation.
    ``x* = (1, ..., 1)`` and ``f(x*) = 0``. The start puts an equal share of the initial loss
    ``f(x0) = 2 mu = 2`` on every eigendirection (``x0 = x* + Q y0``, ``y0_i = 2 sqrt(mu /
    (d lambda_i))``): gradient descent with a step between ``1/L`` and ``2/L`` zig-zags across
    the steep direction of the ellipse while it crawls along the flat one. Gradient descent
    with step ``2 / (L + mu)`` contracts ``||x - x*||`` by ``(kappa - 1) / (kappa + 1)`` per step.
    """

    name = "quadratic"
    description = "ill-conditioned quadratic bowl 1/2 (x-x*)^T A (x-x*), rotated eigenbasis"
    options = MappingProxyType(
        {
            "d": Option(2, int, "dimension", low=2),
            "kappa": Option(10.0, float, "condition number L/mu of A (mu = 1)", low=1.0),
            "dtype": _DTYPE,
        }
    )
    optimum = 0.0

    def __init__(self, seed=0, **options):
        super().__init__(seed, **options)
        d = self.config["d"]
        self.mu, self.L = 1.0, self.config["kappa"]
        self.eigenvalues = np.geomspace(self.mu, self.L, d)
        self.rotation = _rotation(self.rng(0), d)
        hessian = (self.rotation * self.eigenvalues) @ self.rotation.T
        self.hessian = (hessian + hessian.T) / 2
        self.x_star = np.ones(d)
        self.x0 = self.x_star + self.rotation @ (2.0 * np.sqrt(self.mu / (d * self.eigenvalues)))
        self._hessian = self.hessian.astype(self.dtype)
        self._x_star = self.x_star.astype(self.dtype)
        if d == 2:
            half_width = 1.25 * float(np.linalg.norm(self.x0 - self.x_star))
            self.bounds = tuple((float(c - half_width), float(c + half_width)) for c in self.x_star)

    def _loss_and_grad(self, x):
        residual = x - self._x_star
        grad = self._hessian @ residual
        return 0.5 * (residual @ grad), grad

    def _loss_xy(self, x, y):
        (a, b), (_, c) = self.hessian
        rx, ry = x - self.x_star[0], y - self.x_star[1]
        return 0.5 * (a * rx * rx + 2.0 * b * rx * ry + c * ry * ry)


class NoisyQuadratic(Quadratic):
    """The :class:`Quadratic` as a finite sum over ``n_train`` virtual examples with gradient
    noise: ``f_i(x) = f(x) + z_i . (x - x*)``.

    The noise vectors ``z_i`` (seeded Gaussian) are centered and scaled so that, per
    coordinate, their mean is 0 and their population variance exactly ``noise^2``. The full
    batch is therefore the exact quadratic (``f(x*) = 0``), and the gradient of a mini-batch
    ``B`` of ``b`` distinct examples, ``A (x - x*) + mean_B z``, is unbiased with per-coordinate
    variance ``noise^2 / b * (n - b) / (n - 1)``: about ``noise^2 / b``, 0 for the full batch.
    ``evaluate`` reports the exact ``f``.
    """

    name = "noisy_quadratic"
    description = "the quadratic with gradient noise of variance noise^2/batch_size"
    options = MappingProxyType(
        {
            **Quadratic.options,
            "noise": Option(
                1.0, float, "standard deviation of one example's gradient noise", low=0
            ),
            "n_train": Option(1000, int, "number of virtual examples (noise vectors)", low=2),
        }
    )

    def __init__(self, seed=0, **options):
        super().__init__(seed, **options)
        self.n_train = self.config["n_train"]
        noise = self.rng(1).standard_normal((self.n_train, self.config["d"]))
        noise -= noise.mean(axis=0)
        noise *= self.config["noise"] / noise.std(axis=0)
        self.noise = noise.astype(self.dtype)

    def batch(self, indices):
        """The noise vectors of the examples at ``indices``, shape (b, d)."""
        return self.noise[indices]

    def loss_and_grad(self, params, batch):
        (x,) = self._unpack(params, 1)
        residual = x - self._x_star
        grad = self._hessian @ residual
        loss = 0.5 * (residual @ grad)
        if batch is not None:
            mean_noise = batch.mean(axis=0)
            grad += mean_noise
            loss += mean_noise @ residual
        return float(loss), [grad]


class Rosenbrock(_Analytic):
    """``f(x) = sum_{i<d} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`` (the chain form in d
    dimensions), a curved narrow valley; ``x* = (1, ..., 1)``, ``f(x*) = 0``.

    The start is the classic ``(-1.2, 1)``, repeated for ``d > 2`` (-1.2 at even indices, 1
    at odd ones). For ``4 <= d <= 7`` the chain has a second, local minimum near
    ``x_0 = -1`` as well.
    """

    name = "rosenbrock"
    description = "Rosenbrock's banana valley, 2-D or the n-D chain; minimum at (1, ..., 1)"
    options = MappingProxyType({"d": Option(2, int, "dimension", low=2), "dtype": _DTYPE})
    optimum = 0.0
    steepness = 100.0

    def __init__(self, seed=0, **options):
        super().__init__(seed, **options)
        d = self.config["d"]
        self.x_star = np.ones(d)
        self.x0 = np.where(np.arange(d) % 2 == 0, -1.2, 1.0)
        if d == 2:
            self.bounds = ((-2.0, 2.0), (-1.0, 3.0))

    def _loss_and_grad(self, x):
        head, tail = x[:-1], x[1:]
        valley = tail - head * head
        offset = 1 - head
        scale = x.dtype.type(self.steepness)
        loss = scale * (valley @ valley) + offset @ offset
        grad = np.zeros_like(x)
        grad[:-1] = -4 * scale * head * valley - 2 * offset
        grad[1:] += 2 * scale * valley
        return loss, grad

    def _loss_xy(self, x, y):
        return self.steepness * (y - x * x) ** 2 + (1 - x) ** 2


class Beale(_Analytic):
    """Beale's function ``f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 +
    (2.625 - x + xy^3)^2``: flat plateaus and steep ridges; ``x* = (3, 0.5)``, ``f(x*) = 0``.
    The start is ``(1, 1.5)``."""

    name = "beale"
    description = "Beale's function: plateaus and sharp ridges; minimum at (3, 0.5)"
    options = MappingProxyType({"dtype": _DTYPE})
    optimum = 0.0
    bounds = ((-4.5, 4.5), (-4.5, 4.5))
    constants = (1.5, 2.25, 2.625)

    def __init__(self, seed=0, **options):
        super().__init__(seed, **options)
        self.x_star = np.array([3.0, 0.5])
        self.x0 = np.array([1.0, 1.5])

    def _loss_and_grad(self, x):
        u, v = x
        loss = u * 0
        du = dv = u * 0
        power = v * 0 + 1  # v^(k-1)
        for k, constant in enumerate(self.constants, start=1):
            term = constant - u + u * power * v
            loss = loss + term * term
            du = du + 2 * term * (power * v - 1)
            dv = dv + 2 * term * u * k * power
            power = power * v
        return loss, np.array([du, dv], x.dtype)

    def _loss_xy(self, x, y):
        return sum((c - x + x * y**k) ** 2 for k, c in enumerate(self.constants, start=1))


class Saddle(_Analytic):
    """``f(x, y) = x^2 - y^2 + c y^4``: a saddle point at the origin between two minima
    ``(0, +-1/sqrt(2c))`` of ``f = -1/(4c)``; the quartic wall keeps it bounded below.

    The start ``(1, offset)`` is close to the unstable direction: gradient descent with step
    ``lr`` pulls ``x`` to 0 at once but grows ``y`` only by the factor ``1 + 2 lr`` per step, so
    it lingers near the saddle (forever if ``offset = 0``). ``x_star`` is the minimum on the
    side of the start (``y > 0`` for ``offset >= 0``).
    """

    name = "saddle"
    description = "saddle x^2 - y^2 + c y^4 started next to the saddle point, to show escape"
    options = MappingProxyType(
        {
            "c": Option(0.25, float, "weight of the quartic wall c y^4", low=0, low_open=True),
            "offset": Option(1e-3, float, "initial y: distance from the saddle's stable line"),
            "dtype": _DTYPE,
        }
    )

    def __init__(self, seed=0, **options):
        super().__init__(seed, **options)
        self.c = self.config["c"]
        side = -1.0 if self.config["offset"] < 0 else 1.0
        self.x_star = np.array([0.0, side / math.sqrt(2 * self.c)])
        self.optimum = -1 / (4 * self.c)
        self.x0 = np.array([1.0, self.config["offset"]])
        reach = 1.5 * max(1.0, abs(self.x_star[1]), abs(self.config["offset"]))
        self.bounds = ((-float(reach), float(reach)),) * 2

    def _loss_and_grad(self, x):
        u, v = x
        c = x.dtype.type(self.c)
        v2 = v * v
        loss = u * u - v2 + c * v2 * v2
        return loss, np.array([2 * u, -2 * v + 4 * c * v2 * v], x.dtype)

    def _loss_xy(self, x, y):
        return x * x - y * y + self.c * y**4
