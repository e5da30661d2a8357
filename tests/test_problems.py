"""Problems: exact gradients (central differences), determinism, the batch sampler, data
sets, options and errors. Convergence runs are in test_problems_training.py."""

import numpy as np
import pytest
from nn_helpers import numerical_gradients

from optbench import problems
from optbench.problems import data
from optbench.problems.base import Batch, Option

SMALL_DIGITS = {"hidden": "7,5", "dtype": "float64"}
SMALL_TRANSFORMER = {"modulus": 5, "d_model": 6, "heads": 2, "d_mlp": 7, "dtype": "float64"}

# (problem, options, batch size): every problem, and the option combinations that change the
# backward pass; small networks so that the differences stay cheap
GRADIENT_CASES = [
    ("quadratic", {}, None),
    ("quadratic", {"d": 6, "kappa": 1e3}, None),
    ("noisy_quadratic", {"d": 3, "n_train": 50}, 7),
    ("rosenbrock", {}, None),
    ("rosenbrock", {"d": 5}, None),
    ("beale", {}, None),
    ("saddle", {}, None),
    ("saddle", {"c": 2.0, "offset": -0.3}, None),
    ("logistic_regression", {"n_samples": 60, "features": 4}, 9),
    ("logistic_regression", {"n_samples": 60, "features": 4, "l2": 0.3}, 9),
    ("xor_mlp", {}, None),
    ("xor_mlp", {"activation": "sigmoid"}, 3),
    ("digits_mlp", SMALL_DIGITS, 6),
    ("digits_mlp", {**SMALL_DIGITS, "norm": "batch"}, 6),
    ("digits_mlp", {**SMALL_DIGITS, "norm": "layer"}, 6),
    ("digits_mlp", {**SMALL_DIGITS, "dropout": 0.4}, 6),
    ("digits_mlp", {**SMALL_DIGITS, "norm": "batch", "dropout": 0.3, "augment": True}, 6),
    ("digits_mlp", {**SMALL_DIGITS, "l1": 0.01, "l2": 0.1}, 6),
    ("digits_mlp", {**SMALL_DIGITS, "activation": "leaky_relu", "init": "glorot"}, 6),
    ("digits_mlp", {**SMALL_DIGITS, "activation": "elu", "init": "lecun"}, 6),
    ("digits_mlp", {**SMALL_DIGITS, "activation": "tanh"}, 6),
    ("digits_mlp", {**SMALL_DIGITS, "activation": "sigmoid", "hidden": "4"}, 6),
    ("deep_sigmoid_mlp", {"depth": 4, "width": 5, "dtype": "float64"}, 5),
    ("deep_sigmoid_mlp", {"depth": 3, "width": 5, "dtype": "float64", "norm": "batch"}, 5),
    ("mnist1d_mlp", {"hidden": "6", "dtype": "float64", "l2": 0.1}, 4),
    ("mnist1d_cnn", {"channels": 3, "dtype": "float64", "l2": 0.1}, 4),
    ("modular_addition", SMALL_TRANSFORMER, 5),
    ("modular_addition", {**SMALL_TRANSFORMER, "layers": 2, "heads": 1, "l2": 0.1}, 5),
]


def _first_batch(problem, batch_size, seed=0):
    return next(iter(problem.batches(batch_size, np.random.default_rng(seed))))


def _perturbed_start(problem, seed=1):
    """The initial point moved at random, so that no gradient is 0 by symmetry (biases at 0,
    BatchNorm's gamma at 1) and no ReLU sits on its kink."""
    rng = np.random.default_rng(seed)
    return [p + 0.1 * rng.standard_normal(p.shape) for p in problem.initial_params()]


@pytest.mark.parametrize(("name", "options", "batch_size"), GRADIENT_CASES)
def test_gradient_matches_central_differences(name, options, batch_size):
    problem = problems.make(name, seed=3, **options)
    params = _perturbed_start(problem)
    batch = _first_batch(problem, batch_size)
    loss, grads = problem.loss_and_grad(params, batch)
    assert [g.shape for g in grads] == [p.shape for p in params]
    assert all(g.dtype == np.float64 and g.flags.c_contiguous for g in grads)

    def objective():
        return problem.loss_and_grad(params, batch)[0]

    assert objective() == loss  # the same batch (and dropout mask) gives the same loss
    numeric = numerical_gradients(objective, params, step=1e-6)
    for i, (analytic, expected) in enumerate(zip(grads, numeric, strict=True)):
        scale = max(np.abs(expected).max(), 1.0)
        np.testing.assert_allclose(
            analytic, expected, rtol=0, atol=2e-7 * scale, err_msg=f"{name} params[{i}]"
        )


def test_dropout_and_augmentation_change_with_the_batch():
    """Dropout masks and shifts are drawn per batch: two batches of the same examples differ,
    and the same batch object always gives the same result."""
    problem = problems.make("digits_mlp", **SMALL_DIGITS, dropout=0.5, augment=True)
    params = problem.initial_params()
    indices = np.arange(16)
    first, second = problem.batch(indices), problem.batch(indices)
    assert first.key != second.key
    assert not np.array_equal(first.x, second.x)
    assert problem.loss_and_grad(params, first)[0] != problem.loss_and_grad(params, second)[0]
    assert problem.loss_and_grad(params, first)[0] == problem.loss_and_grad(params, first)[0]


@pytest.mark.parametrize("name", list(problems.PROBLEMS))
def test_same_seed_same_everything(name):
    """Data, initial parameters, batches and losses are a function of the seed alone; a
    second run of the same problem object after initial_params() repeats the first."""
    options = {"norm": "batch", "dropout": 0.2, "augment": True} if name == "digits_mlp" else {}

    def trajectory(problem):
        params = problem.initial_params()
        losses, batches = [], []
        batch_size = 64 if problem.n_train > 64 else None
        for step, batch in enumerate(problem.batches(batch_size, np.random.default_rng(5))):
            loss, grads = problem.loss_and_grad(params, batch)
            for p, g in zip(params, grads, strict=True):
                p -= 1e-3 * g
            losses.append(loss)
            batches.append(batch)
            if step == 4:
                break
        return params, losses, batches, problem.evaluate(params)

    first, second = problems.make(name, seed=7, **options), problems.make(name, seed=7, **options)
    runs = [trajectory(first), trajectory(second), trajectory(first)]
    for params, losses, batches, evaluation in runs[1:]:
        for a, b in zip(runs[0][0], params, strict=True):
            np.testing.assert_array_equal(a, b)
        assert losses == runs[0][1]
        assert evaluation == runs[0][3]
        for a, b in zip(runs[0][2], batches, strict=True):
            if isinstance(a, tuple):
                np.testing.assert_array_equal(a.x, b.x)
                np.testing.assert_array_equal(a.targets, b.targets)
                assert a.key == b.key
            else:
                np.testing.assert_array_equal(a, b)


SEEDED = {
    "quadratic": lambda p: p.hessian,
    "noisy_quadratic": lambda p: p.noise,
    "logistic_regression": lambda p: p.data.x_train,
    "xor_mlp": lambda p: p.initial_params()[0],
    "digits_mlp": lambda p: p.split.y_test,
    "deep_sigmoid_mlp": lambda p: p.initial_params()[0],
}


@pytest.mark.parametrize("name", list(SEEDED))
def test_different_seeds_differ(name):
    a, b = (SEEDED[name](problems.make(name, seed=seed)) for seed in (0, 1))
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_fixed_functions_do_not_depend_on_the_seed():
    for name in ("rosenbrock", "beale", "saddle"):
        a, b = problems.make(name, seed=0), problems.make(name, seed=9)
        np.testing.assert_array_equal(a.initial_params()[0], b.initial_params()[0])


# -------------------------------------------------------------------------- analytic problems
@pytest.mark.parametrize(("d", "kappa"), [(2, 10.0), (7, 250.0)])
def test_quadratic_spectrum_start_and_optimum(d, kappa):
    problem = problems.make("quadratic", seed=2, d=d, kappa=kappa)
    assert (problem.mu, problem.L) == (1.0, kappa)
    np.testing.assert_allclose(np.linalg.eigvalsh(problem.hessian), np.geomspace(1, kappa, d))
    np.testing.assert_array_equal(problem.hessian, problem.hessian.T)
    rotation = problem.rotation
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(d), atol=1e-14)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    loss, (grad,) = problem.loss_and_grad([problem.x_star.copy()], None)
    assert loss == 0.0 and not grad.any()
    assert problem.evaluate(problem.initial_params()).train_loss == pytest.approx(2.0)
    # every eigendirection holds the same share of the initial loss
    start = rotation.T @ (problem.initial_params()[0] - problem.x_star)
    np.testing.assert_allclose(0.5 * problem.eigenvalues * start**2, 2.0 / d)


def test_quadratic_gradient_descent_zig_zags():
    """At step 2/(L + mu) the steep eigen-coordinate flips sign every step while the flat one
    keeps its sign: the zig-zag of the lecture's ellipse."""
    problem = problems.make("quadratic")
    (x,) = problem.initial_params()
    lr = 2 / (problem.L + problem.mu)
    coordinates = []
    for _ in range(10):
        x -= lr * problem.loss_and_grad([x], None)[1][0]
        coordinates.append(problem.rotation.T @ (x - problem.x_star))
    flat, steep = np.array(coordinates).T
    assert np.all(np.sign(steep[1:]) == -np.sign(steep[:-1]))
    assert np.all(flat > 0)


def test_noisy_quadratic_noise_model():
    """Per-coordinate noise has mean 0 and variance noise^2 exactly; a mini-batch gradient is
    unbiased with variance noise^2 / b * (n - b) / (n - 1) (sampling without replacement)."""
    n, noise = 400, 0.7
    problem = problems.make("noisy_quadratic", seed=1, noise=noise, n_train=n, d=3)
    np.testing.assert_allclose(problem.noise.mean(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(problem.noise.var(axis=0), noise**2, rtol=1e-12)
    (x,) = problem.initial_params()
    exact = problem.hessian @ (x - problem.x_star)
    full_loss, (full_grad,) = problem.loss_and_grad([x], problem.batch(np.arange(n)))
    np.testing.assert_allclose(full_grad, exact, atol=1e-14)
    assert full_loss == pytest.approx(problem.evaluate([x]).train_loss, abs=1e-14)
    rng = np.random.default_rng(0)
    for b in (1, 16, 100):
        draws = []
        while len(draws) < 4000:
            draws += [problem.loss_and_grad([x], batch)[1][0] for batch in problem.batches(b, rng)]
        draws = np.array(draws)
        expected = noise**2 / b * (n - b) / (n - 1)
        np.testing.assert_allclose(
            draws.mean(axis=0), exact, atol=5 * np.sqrt(expected / len(draws))
        )
        np.testing.assert_allclose(draws.var(axis=0), expected, rtol=0.12)


def test_known_optima():
    cases = {
        "rosenbrock": ({"d": 6}, np.ones(6), 0.0),
        "beale": ({}, np.array([3.0, 0.5]), 0.0),
        "saddle": ({"c": 0.5}, np.array([0.0, 1.0]), -0.5),
        "saddle-": ({"c": 0.5, "offset": -1e-3}, np.array([0.0, -1.0]), -0.5),
    }
    for key, (options, x_star, optimum) in cases.items():
        problem = problems.make(key.rstrip("-"), **options)
        np.testing.assert_array_equal(problem.x_star, x_star)
        assert problem.optimum == optimum
        loss, (grad,) = problem.loss_and_grad([x_star.copy()], None)
        assert loss == pytest.approx(optimum, abs=1e-15) and np.abs(grad).max() < 1e-14
        assert problem.distance_to_optimum(problem.initial_params()) > 0.5


def test_saddle_start_and_escape_direction():
    problem = problems.make("saddle")
    np.testing.assert_array_equal(problem.initial_params()[0], [1.0, 1e-3])
    _, (grad,) = problem.loss_and_grad([np.zeros(2)], None)
    assert not grad.any()  # the origin is a stationary point, and not a minimum:
    assert problem.evaluate([np.array([0.0, 0.1])]).train_loss < 0


@pytest.mark.parametrize(
    ("name", "options"),
    [("quadratic", {}), ("quadratic", {"kappa": 50.0}), ("rosenbrock", {}), ("beale", {}),
     ("saddle", {}), ("noisy_quadratic", {})],
)  # fmt: skip
def test_loss_grid_matches_the_loss(name, options):
    problem = problems.make(name, seed=4, **options)
    (xmin, xmax), (ymin, ymax) = problem.bounds
    assert all(isinstance(v, float) for v in (xmin, xmax, ymin, ymax))
    for point in (problem.initial_params()[0], problem.x_star):
        assert xmin < point[0] < xmax and ymin < point[1] < ymax
    xs, ys = np.linspace(xmin, xmax, 7), np.linspace(ymin, ymax, 5)
    grid = problem.loss_grid(xs, ys)
    assert grid.shape == (5, 7) and grid.dtype == np.float64
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            expected = problem.evaluate([np.array([x, y])]).train_loss
            assert grid[i, j] == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(
    ("name", "options"),
    [("quadratic", {"d": 3}), ("rosenbrock", {"d": 3}), ("digits_mlp", {}), ("xor_mlp", {})],
)
def test_no_loss_grid_beyond_two_variables(name, options):
    problem = problems.make(name, **options)
    assert problem.bounds is None
    with pytest.raises(ValueError, match="two variables"):
        problem.loss_grid([0.0, 1.0], [0.0, 1.0])


def test_float32_option():
    for name in ("quadratic", "rosenbrock", "beale", "saddle", "logistic_regression", "xor_mlp"):
        problem = problems.make(name, dtype="float32")
        params = problem.initial_params()
        _, grads = problem.loss_and_grad(params, _first_batch(problem, None))
        assert all(p.dtype == g.dtype == np.float32 for p, g in zip(params, grads, strict=True))
    assert problems.make("digits_mlp").initial_params()[0].dtype == np.float32


# -------------------------------------------------------------------------- data sets
def test_digits_split_is_stratified_and_standardized():
    problem = problems.make("digits_mlp", seed=5, dtype="float64")
    _, labels = data.digits()
    split = problem.split
    assert split.x_train.shape == (problem.n_train, 64)
    assert split.y_train.size + split.y_test.size == 1797
    for label in range(10):
        in_class = int(np.sum(labels == label))
        assert np.sum(split.y_test == label) == round(0.25 * in_class)
    train_mean = split.x_train.mean(axis=0)
    constant = split.x_train.std(axis=0) == 0
    np.testing.assert_allclose(train_mean, 0.0, atol=1e-12)
    np.testing.assert_allclose(split.x_train.std(axis=0)[~constant], 1.0, rtol=1e-12)
    assert constant.any() and not split.x_train[:, constant].any()
    assert np.abs(split.x_test.mean(axis=0)).max() > 1e-3  # test data: training statistics


def test_stratified_split_partitions_the_indices():
    labels = np.repeat(np.arange(3), [10, 21, 7])
    train, test = data.stratified_split(labels, 0.25, np.random.default_rng(0))
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(38))
    assert [int(np.sum(labels[test] == c)) for c in range(3)] == [2, 5, 2]  # round(2.5) = 2
    with pytest.raises(ValueError, match="test_fraction"):
        data.stratified_split(labels, 1.0, np.random.default_rng(0))


def test_shift_images():
    image = np.arange(64.0).reshape(1, 64) + 1
    grid = image.reshape(8, 8)
    down = data.shift_images(image, (1, 0)).reshape(8, 8)
    np.testing.assert_array_equal(down[1:], grid[:-1])
    assert not down[0].any()
    left = data.shift_images(image, (0, -1)).reshape(8, 8)
    np.testing.assert_array_equal(left[:, :-1], grid[:, 1:])
    assert not left[:, -1].any()
    np.testing.assert_array_equal(data.shift_images(image, (0, 0)), image)


def test_augmented_batches_are_shifted_training_images():
    problem = problems.make("digits_mlp", seed=2, augment=True, dtype="float64")
    shifted = problem.data.shifted_train
    np.testing.assert_array_equal(shifted[0], problem.split.x_train)
    indices = np.arange(200)
    batch = problem.batch(indices)
    matches = [
        [np.array_equal(batch.x[row], shifted[k, index]) for k in range(len(data.SHIFTS))]
        for row, index in enumerate(indices)
    ]
    assert all(any(row) for row in matches)
    chosen = np.array([row.index(True) for row in matches])
    assert len(set(chosen)) == len(data.SHIFTS)  # every shift (and none) is drawn


def test_logistic_data_standardized_and_split():
    problem = problems.make("logistic_regression", seed=1, n_samples=400, features=6)
    split = problem.data
    assert split.x_train.shape == (300, 6) and split.x_test.shape == (100, 6)
    np.testing.assert_allclose(split.x_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(split.x_train.std(axis=0), 1.0, rtol=1e-12)
    assert set(np.unique(split.y_train)) == {0, 1}


# -------------------------------------------------------------------------- evaluation
def test_evaluate_matches_the_full_batch_loss():
    for name, options in [
        ("logistic_regression", {"l2": 0.1}),
        ("xor_mlp", {}),
        ("digits_mlp", {"dtype": "float64", "l1": 1e-3, "l2": 1e-2}),
    ]:
        problem = problems.make(name, **options)
        params = _perturbed_start(problem)
        full = _first_batch(problem, None)
        loss, _ = problem.loss_and_grad(params, full)
        assert problem.evaluate(params).train_loss == pytest.approx(loss, rel=1e-12)


def test_batch_norm_running_statistics():
    """Training steps update the running statistics; evaluate() reads them and changes
    nothing; initial_params() resets them."""
    problem = problems.make("digits_mlp", norm="batch", dtype="float64")
    params = problem.initial_params()
    before = problem.evaluate(params)
    assert [m.any() for m, _ in problem.running_stats] == [False, False]
    for batch in problem.batches(64, np.random.default_rng(0)):
        problem.loss_and_grad(params, batch)
    stats = [(m.copy(), v.copy()) for m, v in problem.running_stats]
    assert all(m.any() and not np.allclose(v, 1) for m, v in stats)
    after = problem.evaluate(params)
    assert after != before and problem.evaluate(params) == after
    for (m, v), (m2, v2) in zip(stats, problem.running_stats, strict=True):
        np.testing.assert_array_equal(m, m2)
        np.testing.assert_array_equal(v, v2)
    problem.initial_params()
    assert problem.evaluate(params) == before


def test_layer_grad_norms_show_vanishing_gradients():
    """Deep sigmoid + Glorot: the first layer's gradient is < 1e-4 of the last one's; ReLU +
    He or BatchNorm keep every layer within a factor of 10."""
    ratios = {}
    for key, options in {
        "sigmoid": {},
        "relu_he": {"activation": "relu", "init": "he"},
        "batch_norm": {"norm": "batch"},
    }.items():
        problem = problems.make("deep_sigmoid_mlp", seed=0, **options)
        assert problem.last_layer_grad_norms == []
        params = problem.initial_params()
        _, grads = problem.loss_and_grad(params, _first_batch(problem, 128))
        norms = problem.last_layer_grad_norms
        assert len(norms) == 11
        assert norms[0] == pytest.approx(float(np.linalg.norm(grads[0])), rel=1e-5)
        ratios[key] = norms[0] / norms[-1]
        assert min(norms) > 0
    assert ratios["sigmoid"] < 1e-4
    assert ratios["relu_he"] > 0.1 and ratios["batch_norm"] > 0.1


def test_digits_grad_norms_and_layout():
    problem = problems.make("digits_mlp", norm="layer")
    params = problem.initial_params()
    assert [p.shape for p in params] == [
        (64, 128), (128,), (128,), (128, 64), (64,), (64,), (64, 10), (10,)
    ]  # fmt: skip
    np.testing.assert_array_equal(params[1], 1.0)  # LayerNorm's gamma
    problem.loss_and_grad(params, _first_batch(problem, 32))
    assert len(problem.last_layer_grad_norms) == 3


# -------------------------------------------------------------------------- the sampler
@pytest.mark.parametrize("batch_size", [1, 7, 32, 100, 101, None, "full"])
def test_each_epoch_is_a_permutation(batch_size):
    problem = problems.make("noisy_quadratic", n_train=101, d=2)
    rng = np.random.default_rng(0)
    rows = {tuple(row): i for i, row in enumerate(problem.noise)}
    orders = []
    for _ in range(3):
        batches = list(problem.batches(batch_size, rng))
        size = 101 if batch_size in (None, "full") else batch_size
        assert len(batches) == problem.steps_per_epoch(batch_size) == -(-101 // size)
        assert [len(b) for b in batches[:-1]] == [size] * (len(batches) - 1)
        assert len(batches[-1]) == 101 - size * (len(batches) - 1)
        order = [rows[tuple(row)] for b in batches for row in b]
        assert sorted(order) == list(range(101))
        orders.append(order)
    if batch_size not in (None, "full", 101):
        assert orders[0] != orders[1]


def test_fixed_functions_have_one_batch_per_epoch():
    problem = problems.make("rosenbrock")
    assert list(problem.batches(1, np.random.default_rng(0))) == [None]
    assert list(problem.batches(None, np.random.default_rng(0))) == [None]
    assert problem.steps_per_epoch(64) == 1


def test_batch_norm_never_sees_a_batch_of_one():
    problem = problems.make("digits_mlp", norm="batch")  # 1347 examples = 673 * 2 + 1
    batches = list(problem.batches(2, np.random.default_rng(0)))
    assert len(batches) == problem.steps_per_epoch(2) == 673
    assert [len(b.targets) for b in batches[-2:]] == [2, 3]
    with pytest.raises(ValueError, match=r"\[2, 1347\].*BatchNorm"):
        problem.batches(1, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("batch_size", "error", "match"),
    [(0, ValueError, r"\[1, 4\]"), (5, ValueError, r"\[1, 4\]"), (2.0, TypeError, "int"),
     (True, TypeError, "int"), ("all", TypeError, "int"), (-1, ValueError, "batch_size")],
)  # fmt: skip
def test_bad_batch_sizes(batch_size, error, match):
    problem = problems.make("xor_mlp")
    with pytest.raises(error, match=match):
        problem.batches(batch_size, np.random.default_rng(0))  # raised now, not when iterated
    with pytest.raises(error, match=match):
        problem.steps_per_epoch(batch_size)


def test_sampler_needs_a_generator():
    with pytest.raises(TypeError, match="rng"):
        problems.make("xor_mlp").batches(2, 0)


# -------------------------------------------------------------------------- registry, options
def test_registry_names_and_descriptions():
    assert list(problems.PROBLEMS) == [
        "quadratic", "noisy_quadratic", "rosenbrock", "beale", "saddle",
        "logistic_regression", "xor_mlp", "digits_mlp", "deep_sigmoid_mlp", "mnist1d_mlp",
        "mnist1d_cnn", "modular_addition",
    ]  # fmt: skip
    for name, cls in problems.PROBLEMS.items():
        assert cls.name == name and cls.description and "\n" not in cls.description
        for option_name, option in cls.options.items():
            assert isinstance(option, Option) and option.help
            assert option.check(option_name, option.default) == option.default
            assert option.parse(option_name, str(option.default)) == option.default
            assert option.describe().startswith(option.help)
            assert repr(option.default) in option.describe()


def test_make_unknown_problem_lists_the_names():
    with pytest.raises(ValueError, match=r"unknown problem 'mnist'.*quadratic.*deep_sigmoid_mlp"):
        problems.make("mnist")
    assert isinstance(problems.make("Digits_MLP"), problems.PROBLEMS["digits_mlp"])


def test_parse_options():
    parsed = problems.parse_options(
        "digits_mlp", ["norm=batch", "dropout=0.25", "augment=yes", "hidden=32, 16"]
    )
    assert parsed == {"norm": "batch", "dropout": 0.25, "augment": True, "hidden": "32, 16"}
    assert problems.make("digits_mlp", **parsed).sizes == (64, 32, 16, 10)
    assert problems.parse_options("quadratic", ["d=4", "kappa=100"]) == {"d": 4, "kappa": 100.0}


@pytest.mark.parametrize(
    ("assignment", "match"),
    [
        ("norm", "key=value"),
        ("=3", "key=value"),
        ("depth=3", "no option 'depth'.*hidden, activation"),
        ("norm=group", "norm='group': choose one of none, batch, layer"),
        ("dropout=1", r"dropout=1.0: must be in \[0, 1\)"),
        ("dropout=nan", "finite"),
        ("dropout=lots", "expected a float"),
        ("augment=maybe", "true or false"),
        ("hidden=32,,8", "comma-separated"),
        ("hidden=0", ">= 1"),
    ],
)
def test_parse_options_errors(assignment, match):
    with pytest.raises(ValueError, match=match):
        problems.parse_options("digits_mlp", [assignment])


@pytest.mark.parametrize(
    ("name", "options", "error", "match"),
    [
        ("quadratic", {"d": 1}, ValueError, "d=1: must be >= 2"),
        ("quadratic", {"d": 2.0}, TypeError, "d must be an int"),
        ("quadratic", {"kappa": 0.5}, ValueError, "kappa"),
        ("quadratic", {"kappa": True}, TypeError, "kappa must be a float"),
        ("quadratic", {"dtype": "float16"}, ValueError, "float32, float64"),
        ("saddle", {"c": 0.0}, ValueError, r"c=0.0: must be > 0"),
        ("noisy_quadratic", {"noise": -1.0}, ValueError, "noise"),
        ("xor_mlp", {"hidden": "8"}, ValueError, "no option 'hidden'.*activation, dtype"),
        ("digits_mlp", {"augment": 1}, TypeError, "augment must be a bool"),
        ("deep_sigmoid_mlp", {"depth": 0}, ValueError, "depth"),
    ],
)
def test_bad_options(name, options, error, match):
    with pytest.raises(error, match=match):
        problems.make(name, **options)


def test_bad_seed_and_params():
    with pytest.raises(ValueError, match="seed"):
        problems.make("beale", seed=-1)
    with pytest.raises(ValueError, match="seed"):
        problems.make("beale", seed=1.5)
    problem = problems.make("xor_mlp")
    params = problem.initial_params()
    batch = _first_batch(problem, None)
    with pytest.raises(ValueError, match="list of 4 parameter arrays, got 3"):
        problem.loss_and_grad(params[:3], batch)
    with pytest.raises(ValueError, match="list of 1 parameter arrays"):
        problems.make("beale").loss_and_grad(np.zeros(2), None)


def test_option_interval_text():
    assert Option(0.0, float, "p", low=0, high=1, high_open=True).interval() == "in [0, 1)"
    assert Option(1, int, "n", low=0, low_open=True).interval() == "> 0"
    assert Option(1, int, "n").interval() == ""
    assert isinstance(Batch(np.zeros((1, 1)), np.zeros(1, np.int64)).key, type(None))


@pytest.mark.parametrize(
    ("name", "options", "shapes"),
    [
        ("logistic_regression", {}, []),
        ("digits_mlp", {"norm": "layer"}, [(64, 128), (128, 64)]),
        ("mnist1d_cnn", {"channels": 4}, [(4, 5), (4, 12), (4, 12)]),
        ("modular_addition", {"d_model": 8, "heads": 2, "d_mlp": 12, "layers": 2},
         [(8, 24), (8, 8), (8, 12), (12, 8)] * 2),
    ],
)  # fmt: skip
def test_hidden_matrices_are_2d_views_and_the_rest_1d(name, options, shapes):
    problem = problems.make(name, **options)
    params = problem.initial_params()
    views = problem.as_matrices(params)
    positions = problem.matrix_positions()
    assert [views[i].shape for i in positions] == shapes
    for i, (view, param) in enumerate(zip(views, params, strict=True)):
        assert np.shares_memory(view, param)
        assert view.ndim == (2 if i in positions else 1)
    if positions:  # the output layer is not a hidden matrix
        assert problem.n_params - 2 not in positions
    last = len(params) - 1  # a bias: flattened, which a strided (4, 3) view cannot be
    with pytest.raises(ValueError, match=rf"arrays\[{last}\] is not contiguous"):
        problem.as_matrices([*params[:-1], np.zeros((4, 6))[:, :3]])
