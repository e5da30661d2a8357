"""Data sets of the problems: scikit-learn's 8x8 digits with a seeded stratified split and
one-pixel shifts, and a synthetic logistic-regression set.

Every array returned is new (the caller may keep or change it); features are standardized with
the statistics of the training set only (:mod:`optbench.preprocessing`).
"""

import functools
from typing import NamedTuple

import numpy as np

from ..preprocessing import Standardizer

DIGITS_SIDE = 8
# (row, column) shift of the image content: none, up, down, left, right
SHIFTS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


class Split(NamedTuple):
    """A standardized train/test split. ``x_*`` are (samples, features) in the requested dtype,
    ``y_*`` int64 class labels (0/1 for binary problems)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@functools.lru_cache(maxsize=1)
def _digits():
    # scikit-learn is imported only here, for its bundled data (no download)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.ascontiguousarray(bunch.data, dtype=np.float64)
    labels = np.ascontiguousarray(bunch.target, dtype=np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def digits():
    """The 1,797 8x8 digit images as float64 rows of 64 gray levels in [0, 16], and their
    int64 labels 0-9 (scikit-learn's copy of the UCI optical digits test set)."""
    images, labels = _digits()
    return images.copy(), labels.copy()


def stratified_split(labels, test_fraction, rng):
    """Indices ``(train, test)``, both sorted, with ``round(test_fraction * n_c)`` examples of
    every class ``c`` (of ``n_c``) drawn at random from ``rng`` into the test part."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    test = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test.append(members[: round(test_fraction * members.size)])
    in_test = np.zeros(labels.size, bool)
    in_test[np.concatenate(test)] = True
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def shift_images(rows, shift):
    """Images (rows of 64 pixels) moved by ``shift = (down, right)`` pixels (each -1, 0 or
    1); the pixels moved in from the border are 0 (the digits' background)."""
    down, right = shift
    images = rows.reshape(-1, DIGITS_SIDE, DIGITS_SIDE)
    moved = np.zeros_like(images)
    rows_to = slice(max(down, 0), DIGITS_SIDE + min(down, 0))
    rows_from = slice(max(-down, 0), DIGITS_SIDE + min(-down, 0))
    cols_to = slice(max(right, 0), DIGITS_SIDE + min(right, 0))
    cols_from = slice(max(-right, 0), DIGITS_SIDE + min(-right, 0))
    moved[:, rows_to, cols_to] = images[:, rows_from, cols_from]
    return moved.reshape(rows.shape)


class DigitsData(NamedTuple):
    """The digits split of one seed. With augmentation, ``shifted_train[k]`` is the
    standardized training set moved by ``SHIFTS[k]`` (``shifted_train[0]`` is
    ``split.x_train``); without, it is ``None``."""

    split: Split
    shifted_train: np.ndarray | None


def digits_split(rng, dtype, test_fraction=0.25, augment=False):
    """Digits split by :func:`stratified_split` with the generator ``rng``, standardized per
    pixel with training statistics; a pixel constant in training maps to 0.

    The statistics are those of the training images, or with ``augment`` of the training
    images under all of ``SHIFTS`` (the distribution the network trains on): a border pixel
    that is almost always 0 (standard deviation ~0.03 gray levels) would otherwise turn the
    stroke shifted onto it into a value of ~100 standard deviations.
    """
    images, labels = _digits()
    train, test = stratified_split(labels, test_fraction, rng)
    shifts = SHIFTS if augment else SHIFTS[:1]
    raw = [shift_images(images[train], shift) for shift in shifts]
    scaler = Standardizer().fit(np.concatenate(raw))
    shifted = np.stack([scaler.transform(x) for x in raw]).astype(dtype)
    x_test = scaler.transform(images[test]).astype(dtype)
    split = Split(shifted[0], labels[train], x_test, labels[test])
    return DigitsData(split, shifted if augment else None)


def synthetic_logistic(rng, n_samples, n_features, dtype, test_fraction=0.25):
    """A binary classification set drawn from a logistic model, standardized.

    Latent features ``z = g (I + M)`` with ``g ~ N(0, I)`` and ``M`` a Gaussian matrix of
    entries ``N(0, 1 / n_features)`` (correlated columns), labels
    ``y ~ Bernoulli(sigmoid(z . w + 0.5))`` with
    ``w ~ N(0, 4 / n_features)``; the recorded features ``x = z * scale + shift`` have scales
    from 0.01 to 100 and shifts up to +-50, which standardization removes. The last
    ``round(test_fraction * n_samples)`` draws form the test set.
    """
    mixing = rng.standard_normal((n_features, n_features)) / np.sqrt(n_features)
    latent = rng.standard_normal((n_samples, n_features)) @ (np.eye(n_features) + mixing)
    weights = rng.standard_normal(n_features) * (2 / np.sqrt(n_features))
    logits = latent @ weights + 0.5
    labels = (rng.random(n_samples) < 0.5 * (1 + np.tanh(logits / 2))).astype(np.int64)
    scale = 10.0 ** rng.uniform(-2, 2, n_features)
    shift = rng.uniform(-50, 50, n_features)
    features = latent * scale + shift
    n_test = round(test_fraction * n_samples)
    if not 2 <= n_test <= n_samples - 2:
        raise ValueError(f"n_samples={n_samples} is too small for a train/test split")
    x_train, x_test = features[:-n_test], features[-n_test:]
    scaler = Standardizer().fit(x_train)
    return Split(
        scaler.transform(x_train).astype(dtype),
        labels[:-n_test],
        scaler.transform(x_test).astype(dtype),
        labels[-n_test:],
    )
