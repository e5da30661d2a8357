"""The conformance suite of an optimizer spec: what ``optbench check`` runs, and what a plugin's
own pytest suite calls as ``optbench.testing.check_optimizer(spec)``.

Checks (each over every variant where it says so, float32 and float64):

* ``reference``: the fused kernel against the spec's NumPy reference for ``STEPS`` steps, one
  array and a model of several arrays (a matrix, a vector, a 3-D, a 0-d and an empty array);
* ``param_groups``: two groups with different options against the reference;
* ``nonfinite``: NaN and Inf gradients propagate to the same elements as in the reference;
  ``nonfinite="raise"`` and ``"skip"`` leave every array untouched;
* ``serial_parallel``: the serial and the parallel kernel give the same bits;
* ``state_dict``: saving and loading mid-run gives bitwise the same later steps;
* ``bad_input``: the spec's error inputs are refused with the message declared, and a bad
  gradient is refused before any array is touched;
* ``codegen``: the chunk's update loops make no masked loads or stores (AVX-512 machines);
* ``modes``: for a spec with ``to_eval``/``to_train``, eval() moves the parameters, step()
  is refused there, train() brings them back, and the state dict keeps the mode;
* ``torch``: parity with the ``torch.optim`` peer, when the spec names one and torch imports.

An unfused spec (no chunk kernel: its reference is its update) has no kernel to compare:
``serial_parallel`` and ``codegen`` do not apply (see :func:`skipped_checks`), and the others
check the machinery around its update (groups, extras, state dict, policies).

float64 runs the kernel and the reference independently and compares to 1e-10 relative;
float32 restarts the reference from the kernel's parameters and state before every step (so
rounding differences cannot accumulate into a tolerance that would hide a real error) and
compares to 4 float32 ulps of the array's largest magnitude.
"""

import contextlib
import copy
import dataclasses
import importlib.util
import inspect
import re

import numpy as np

from . import optim, registry
from .kernels import chunks
from .reference.optimizers import global_grad_scale, model_step
from .spec import conforming_shape

STEPS = 50
DTYPES = (np.float32, np.float64)
SHAPES = ((7, 5), (33,), (2, 3, 4), (), (0, 3))
ONE_ARRAY = ((40,),)
# a masked vector move from or to an indexed address, or AVX's maskmov
MASKED_ACCESS = re.compile(
    r"^\s*(?:v(?:p)?maskmov\w*\s|vmov\w*\s[^\n]*\(%\w+,%\w+,\d\)[^\n]*\{%k\d\})", re.M
)


@dataclasses.dataclass(frozen=True)
class Failure:
    """One failed check: where (variant, dtype, step, element) and both values."""

    spec: str
    check: str
    variant: str = ""
    dtype: str = ""
    step: int | None = None
    element: str = ""
    expected: object = None
    actual: object = None
    message: str = ""

    def __str__(self):
        where = " ".join(x for x in (self.variant, self.dtype) if x)
        parts = [f"{self.spec}: {self.check} failed" + (f" ({where})" if where else "")]
        if self.step is not None:
            parts.append(f"first diverging step {self.step}")
        if self.element:
            parts.append(f"element {self.element}")
        if self.expected is not None or self.actual is not None:
            parts.append(f"expected {self.expected!r}, got {self.actual!r}")
        if self.message:
            parts.append(self.message)
        return ", ".join(parts)


class ConformanceError(AssertionError):
    """Raised by :func:`check_optimizer`; ``failures`` lists every failed check."""

    def __init__(self, failures):
        self.failures = failures
        super().__init__("\n".join(map(str, failures)))


# --------------------------------------------------------------------------------------------
# comparison with the reference
# --------------------------------------------------------------------------------------------
def make_params(rng, dtype, shapes=SHAPES, scale=1.0, *, spec=None):
    """Arrays of ``shapes`` drawn from N(0, scale^2); with ``spec``, each shape brought to the
    numbers of dimensions the spec takes (``conforming_shape``)."""
    ndims = None if spec is None else spec.ndims
    shapes = [conforming_shape(shape, ndims) for shape in shapes]
    return [np.asarray(scale * rng.standard_normal(shape), dtype) for shape in shapes]


def make_grads(rng, params):
    return [np.asarray(rng.standard_normal(p.shape), p.dtype) for p in params]


def nonfinite_grads(rng, params):
    """Random gradients with NaN, +Inf and -Inf in the first array."""
    grads = make_grads(rng, params)
    flat = grads[0].reshape(-1)
    if flat.size >= 3:
        flat[0], flat[1], flat[-1] = np.nan, np.inf, -np.inf
    return grads


def first_difference(actual, expected, dtype):
    """``(flat index, actual, expected)`` of the first element outside the tolerance (see the
    module docstring; NaN must meet NaN, an infinity the same infinity), or None."""
    actual = np.asarray(actual, np.float64).reshape(-1)
    expected = np.asarray(expected, np.float64).reshape(-1)
    if actual.shape != expected.shape:
        return -1, actual.shape, expected.shape
    nan_a, nan_e = np.isnan(actual), np.isnan(expected)
    finite = np.isfinite(expected)
    if np.dtype(dtype) == np.float64:
        allowed = 1e-12 + 1e-10 * np.abs(expected)
    else:
        scale = max(np.abs(expected[finite]).max(initial=0.0), 1.0)
        allowed = np.full(expected.shape, 4 * np.finfo(np.float32).eps * scale)
    with np.errstate(invalid="ignore"):
        bad = (nan_a != nan_e) | (~finite & ~nan_e & (actual != expected))
        bad |= finite & ~(np.abs(actual - expected) <= allowed)
    if not bad.any():
        return None
    k = int(np.argmax(bad))
    return k, float(actual[k]), float(expected[k])


def compare_with_reference(spec, opt, params, rng, steps, grad_source=make_grads):
    """Step ``opt`` (over ``params``) and the spec's reference together; return the first
    divergence as ``(step, what, flat index, actual, expected)``, or None."""
    groups = [g for g in opt.param_groups for _ in g["params"]]
    reference_params = [p.copy() for p in params]
    reference_states = [{} for _ in params]
    resync = params[0].dtype == np.float32
    state = {}
    for step in range(1, steps + 1):
        grads = grad_source(rng, params)
        if resync:
            reference_params = [p.copy() for p in params]
            reference_states = [_reference_state(state.get(i, {})) for i in range(len(params))]
        opt.step(grads)
        state = opt.state_dict()["state"]
        scale = 1.0 if opt.clip_norm is None else global_grad_scale(grads, opt.clip_norm)
        options = [{k: v for k, v in group.items() if k != "params"} for group in groups]
        model_step(
            spec.reference,
            reference_params,
            grads,
            reference_states,
            step,
            options,
            coupled=spec.coupled,
            grad_scale=scale,
        )
        for i, param in enumerate(reference_params):
            found = first_difference(params[i], param, params[i].dtype)
            if found is not None:
                return (step, f"params[{i}]", *found)
            if state[i]["step"] != step:
                return (step, f"state[{i}]['step']", -1, state[i]["step"], step)
            names = set(state[i]) - {"step"}
            if names != set(reference_states[i]):
                return (step, f"state[{i}] buffers", -1, sorted(names), sorted(reference_states[i]))
            for name, value in reference_states[i].items():
                found = first_difference(state[i][name], value, params[i].dtype)
                if found is not None:
                    return (step, f"state[{i}][{name!r}]", *found)
    return None


def _reference_state(entry):
    return {
        k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in entry.items() if k != "step"
    }


# --------------------------------------------------------------------------------------------
# the checks
# --------------------------------------------------------------------------------------------
def _divergence(spec, check, variant, dtype, found):
    step, what, index, actual, expected = found
    element = f"{what}" + (f" flat index {index}" if index >= 0 else "")
    return Failure(spec.name, check, variant, np.dtype(dtype).name, step, element, expected, actual)


def check_reference(spec, rng, steps=STEPS):
    failures = []
    for variant in spec.variants:
        for dtype in DTYPES:
            for shapes in (ONE_ARRAY, SHAPES):
                params = make_params(rng, dtype, shapes, spec=spec)
                opt = optim.make(spec, params, **variant.options)
                found = compare_with_reference(spec, opt, params, rng, steps)
                if found is not None:
                    failures.append(_divergence(spec, "reference", variant.id, dtype, found))
                    break
    return failures


def check_param_groups(spec, rng):
    failures = []
    for dtype in DTYPES:
        params = make_params(rng, dtype, spec=spec)
        groups = [
            {"params": params[:2], **spec.variants[-1].options},
            {"params": params[2:], "lr": 10 * spec.lr},
        ]
        found = compare_with_reference(spec, optim.make(spec, groups), params, rng, 20)
        if found is not None:
            failures.append(_divergence(spec, "param_groups", "two groups", dtype, found))
    return failures


def check_nonfinite(spec, rng):
    failures = []
    for dtype in DTYPES:
        params = make_params(rng, dtype, spec=spec)
        opt = optim.make(spec, params, **spec.variants[-1].options)
        with np.errstate(all="ignore"):
            found = compare_with_reference(spec, opt, params, rng, 3, nonfinite_grads)
        if found is not None:
            failures.append(_divergence(spec, "nonfinite", "propagate", dtype, found))
        for policy in ("raise", "skip"):
            params = make_params(rng, dtype, spec=spec)
            opt = optim.make(spec, params, nonfinite=policy)
            opt.step(make_grads(rng, params))
            before = _snapshot(opt, params)
            with contextlib.suppress(FloatingPointError):
                opt.step(nonfinite_grads(rng, params))
            if not _same(before, _snapshot(opt, params)):
                failures.append(
                    Failure(
                        spec.name,
                        "nonfinite",
                        policy,
                        np.dtype(dtype).name,
                        message="a refused step changed an array",
                    )
                )
    return failures


def check_serial_parallel(spec, rng):
    """A model cut into many small chunks, stepped serially and on Numba's threads."""
    if not spec.fused:
        return []
    failures = []
    saved_chunk = chunks.CHUNK_ELEMENTS
    chunks.CHUNK_ELEMENTS = 64
    try:
        for variant in spec.variants:
            params = make_params(rng, np.float32, ((300, 7), (1000,), (5,)), spec=spec)
            twins = [p.copy() for p in params]
            serial = optim.make(spec, params, dispatch="serial", **variant.options)
            parallel = optim.make(spec, twins, dispatch="parallel", **variant.options)
            for step in range(1, 6):
                grads = make_grads(rng, params)
                serial.step(grads)
                parallel.step(grads)
                bad = [
                    i
                    for i, (a, b) in enumerate(zip(params, twins, strict=True))
                    if not np.array_equal(a, b, equal_nan=True)
                ]
                if bad:
                    failures.append(
                        Failure(
                            spec.name,
                            "serial_parallel",
                            variant.id,
                            "float32",
                            step,
                            f"params[{bad[0]}]",
                            message="the kernels differ in the last bits",
                        )
                    )
                    break
    finally:
        chunks.CHUNK_ELEMENTS = saved_chunk
    return failures


def check_state_dict(spec, rng):
    failures = []
    for variant in spec.variants:
        for dtype in DTYPES:
            params = make_params(rng, dtype, spec=spec)
            opt = optim.make(spec, params, **variant.options)
            for _ in range(7):
                opt.step(make_grads(rng, params))
            saved = copy.deepcopy(opt.state_dict())
            twins = [p.copy() for p in params]
            restored = optim.make(spec, twins)
            restored.load_state_dict(saved)
            for step in range(8, 14):
                grads = make_grads(rng, params)
                opt.step(grads)
                restored.step(grads)
                if not all(
                    np.array_equal(a, b, equal_nan=True) for a, b in zip(params, twins, strict=True)
                ):
                    failures.append(
                        Failure(
                            spec.name,
                            "state_dict",
                            variant.id,
                            np.dtype(dtype).name,
                            step,
                            message="a reloaded optimizer steps differently",
                        )
                    )
                    break
    return failures


def check_bad_input(spec, rng):
    failures = []
    for error_input in spec.error_inputs:
        label = ", ".join(f"{k}={v!r}" for k, v in error_input.options.items())
        try:
            optim.make(spec, [np.zeros(3)], **error_input.options)
        except error_input.error as error:
            if not re.search(error_input.match, str(error)):
                failures.append(
                    Failure(
                        spec.name,
                        "bad_input",
                        label,
                        expected=error_input.match,
                        actual=str(error),
                        message="the message does not match",
                    )
                )
        except Exception as error:  # the wrong kind of error is a failure, not a crash
            failures.append(
                Failure(
                    spec.name,
                    "bad_input",
                    label,
                    expected=error_input.error.__name__,
                    actual=type(error).__name__,
                )
            )
        else:
            failures.append(
                Failure(
                    spec.name,
                    "bad_input",
                    label,
                    message=f"accepted; {error_input.error.__name__} expected",
                )
            )
    params = make_params(rng, np.float32, spec=spec)
    opt = optim.make(spec, params, **spec.variants[-1].options)
    opt.step(make_grads(rng, params))
    before = _snapshot(opt, params)
    for wrong in (
        [g.astype(np.float64) for g in make_grads(rng, params)],
        make_grads(rng, params)[:-1],
        [*make_grads(rng, params)[:-2], np.zeros((9, 9), np.float32), params[-1].copy()],
    ):
        try:
            opt.step(wrong)
        except (TypeError, ValueError):
            pass
        else:
            failures.append(
                Failure(spec.name, "bad_input", "grads", message="a bad gradient was accepted")
            )
    if not _same(before, _snapshot(opt, params)):
        failures.append(
            Failure(spec.name, "bad_input", "grads", message="a refused step changed an array")
        )
    return failures


def check_codegen(spec, rng):
    if not spec.fused:
        return []
    import numba
    from numba import types

    from .kernels import _config

    hyper = types.float64[::1]
    kernels = [spec.chunk] if spec.reduce is None else [spec.reduce, spec.chunk]
    # a two-pass spec's functions also take the array's ndim and its sums
    extra = () if spec.reduce is None else (types.int64, types.float64[::1])
    failures = []
    for kernel in kernels:
        fresh = numba.njit(**{**_config.UNFUSED, "cache": False})(kernel.py_func)
        for dtype in (types.float32, types.float64):
            arrays = (dtype[::1], dtype[::1], dtype[:, ::1], types.int64, hyper, hyper)
            signature = (*arrays, types.int64, *extra)
            fresh.compile(signature)
            found = MASKED_ACCESS.findall(fresh.inspect_asm(signature))
            if found:
                failures.append(
                    Failure(
                        spec.name,
                        "codegen",
                        dtype=str(dtype),
                        actual=found[:3],
                        message=f"masked loads or stores in the loops of {kernel.__name__}",
                    )
                )
    return failures


@contextlib.contextmanager
def working_precision(torch):
    """Inside the block, ``Tensor.bfloat16()`` returns a copy in the tensor's own dtype: a
    torch optimizer that computes in bfloat16 (Muon's Newton-Schulz iterations) then runs its
    algorithm in the working precision, as optbench does, and the two can be compared to the
    last bits."""
    original = torch.Tensor.bfloat16
    torch.Tensor.bfloat16 = lambda tensor, *args, **kwargs: tensor.clone()
    try:
        yield
    finally:
        torch.Tensor.bfloat16 = original


def check_torch(spec, rng):
    """Every variant against the ``torch.optim`` peer for 20 steps, in float64 (a peer without
    ``maximize`` takes the negated gradients where the variant maximizes)."""
    if spec.torch_peer is None:
        return []
    try:
        import torch
    except ImportError:
        return []
    # torch keeps per-step scalars (step, NAdam's mu_product) in its default dtype: float64
    # here, so that float64 parameters are compared with a float64 computation throughout
    saved_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return _torch_parity(spec, torch, rng)
    finally:
        torch.set_default_dtype(saved_dtype)


def _torch_parity(spec, torch, rng):
    failures = []
    torch_class = getattr(torch.optim, spec.torch_peer)
    for variant in spec.variants:
        params = make_params(rng, np.float64, spec=spec)
        twins = [p.copy() for p in params]
        opt = optim.make(spec, params, **variant.options)
        options = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
        accepted = set(inspect.signature(torch_class).parameters)
        tensors = [torch.from_numpy(t) for t in twins]
        # empty arrays stay out: torch's Adafactor divides by their size
        stepped = [tensor for tensor in tensors if tensor.numel()]
        peer = torch_class(stepped, **{k: v for k, v in options.items() if k in accepted})
        sign = -1.0 if options["maximize"] and "maximize" not in accepted else 1.0
        for step in range(1, 21):
            grads = make_grads(rng, params)
            opt.step(grads)
            for tensor, grad in zip(tensors, grads, strict=True):
                tensor.grad = torch.from_numpy(grad.copy()).mul_(sign)
            with working_precision(torch):
                peer.step()
            for i, (a, b) in enumerate(zip(params, twins, strict=True)):
                found = first_difference(a, b, np.float64)
                if found is not None:
                    failures.append(
                        _divergence(
                            spec, "torch", variant.id, np.float64, (step, f"params[{i}]", *found)
                        )
                    )
                    break
            else:
                continue
            break
    return failures


def check_modes(spec, rng):
    """eval() moves the parameters, step() is then refused with nothing changed, train()
    brings them back (to rounding: 1e-10 relative in float64, 1e-4 in float32), and a state
    dict saved in eval mode restores eval mode."""
    failures = []
    if not spec.switches_weights:
        return failures
    for variant in spec.variants:
        for dtype in DTYPES:
            name = np.dtype(dtype).name

            def fail(message, variant=variant, name=name):
                failures.append(Failure(spec.name, "modes", variant.id, name, message=message))

            params = make_params(rng, dtype, spec=spec)
            opt = optim.make(spec, params, **variant.options)
            for _ in range(7):
                opt.step(make_grads(rng, params))
            y = [p.copy() for p in params]
            opt.eval()
            if all(np.array_equal(p, b) for p, b in zip(params, y, strict=True)):
                fail("eval() left every parameter as it was")
            x = [p.copy() for p in params]
            try:
                opt.step(make_grads(rng, params))
                fail("step() ran in eval mode")
            except RuntimeError:
                if not all(np.array_equal(p, b, True) for p, b in zip(params, x, strict=True)):
                    fail("a step refused in eval mode changed the parameters")
            restored = optim.make(spec, [p.copy() for p in params])
            restored.load_state_dict(opt.state_dict())
            if restored.training:
                fail("a state dict saved in eval mode loads in train mode")
            opt.train()
            tolerance = 1e-4 if dtype == np.float32 else 1e-10
            for p, b in zip(params, y, strict=True):
                scale = float(np.max(np.abs(b), initial=1.0))
                if not np.allclose(p, b, rtol=0.0, atol=tolerance * scale, equal_nan=True):
                    fail("train() after eval() does not give the training point back")
                    break
    return failures


def check_traffic(spec, rng):
    """Every variant's passes (the roofline of ``optbench throughput``): a tuple of
    :class:`spec.Pass` that updates at least the parameter."""
    failures = []
    for variant in spec.variants:
        params = make_params(rng, "float64", ONE_ARRAY, spec=spec)
        group = optim.make(spec, params, **variant.options).param_groups[0]
        passes = spec.passes(group, params[0].shape)
        if not any(p.updates for p in passes):
            failures.append(
                Failure(
                    spec.name,
                    "traffic",
                    variant.id,
                    message=f"no pass updates an array in place (the parameter): {passes}",
                )
            )
    return failures


CHECKS = {
    "reference": check_reference,
    "param_groups": check_param_groups,
    "nonfinite": check_nonfinite,
    "serial_parallel": check_serial_parallel,
    "state_dict": check_state_dict,
    "bad_input": check_bad_input,
    "codegen": check_codegen,
    "traffic": check_traffic,
    "modes": check_modes,
    "torch": check_torch,
}


def skipped_checks(spec, checks=None):
    """``{check: reason}`` for the checks in ``checks`` (default all) that cannot apply to
    ``spec`` here: they run and pass trivially."""
    spec = registry.get(spec)
    reasons = {}
    wanted = CHECKS if checks is None else checks
    if not spec.fused:
        for name in ("serial_parallel", "codegen"):
            if name in wanted:
                reasons[name] = "unfused (no chunk kernel)"
    if "modes" in wanted and not spec.switches_weights:
        reasons["modes"] = "no eval weights"
    if "torch" in wanted:
        if spec.torch_peer is None:
            reasons["torch"] = "no torch.optim peer"
        elif importlib.util.find_spec("torch") is None:
            reasons["torch"] = "torch is not installed"
    return reasons


def run_checks(spec, *, checks=None, seed=0):
    """Every failure of ``spec`` (a spec or a registered name) in ``checks`` (default all)."""
    spec = registry.get(spec)
    rng = np.random.default_rng(seed)
    failures = []
    for name in CHECKS if checks is None else checks:
        with np.errstate(all="ignore"):
            try:
                failures += CHECKS[name](spec, rng)
            except Exception as error:  # a crash is a failure of that check, with its reason
                failures.append(
                    Failure(spec.name, name, message=f"{type(error).__name__}: {error}")
                )
    return failures


def check_optimizer(spec, *, checks=None, seed=0):
    """Raise :class:`ConformanceError` listing every failed check of ``spec``."""
    failures = run_checks(spec, checks=checks, seed=seed)
    if failures:
        raise ConformanceError(failures)


def _snapshot(opt, params):
    state = opt.state_dict()["state"]
    arrays = [p.copy() for p in params]
    arrays += [np.asarray(v).copy() for entry in state.values() for v in entry.values()]
    return arrays


def _same(before, after):
    return len(before) == len(after) and all(
        np.array_equal(a, b, equal_nan=True) for a, b in zip(before, after, strict=True)
    )
