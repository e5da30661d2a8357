"""Any ``torch.optim.Optimizer`` subclass as an unfused optbench optimizer, to compare with it in
runs, sweeps and reports (torch is optional: nothing here imports it until asked).

:func:`torch_spec` reads the class's signature and probes it on a small tensor to declare an
:class:`~optbench.spec.OptimizerSpec` with no chunk kernel: its hyperparameters are the
constructor's float, bool and float-tuple options (torch validates their values, at
construction); its state buffers are the parameter-sized tensors torch keeps per parameter,
each marked with the option that brings it in (``amsgrad`` brings ``max_exp_avg_sq``). Its
update, called array by array by optbench's unfused step, builds the torch optimizer over a
tensor sharing the array's memory, gives it the saved state and step count, steps, and reads
the state back: optbench's groups, extras, NaN policies, state dict and pickles apply as to
any optimizer. Slow (one torch optimizer per array and step), and reports mark it unfused.

Classes whose per-parameter state holds scalars other than ``step`` (NAdam's
``mu_product``), or without a ``maximize`` option, are refused with a ``ValueError``.
"""

import functools
import inspect
import math
import re

import numpy as np

from .spec import Flag, LogUniform, OptimizerSpec, Real, Reals, State, Variant

NAME_PREFIX = "torch.optim."
# implementation switches of torch.optim, not options of the algorithm
_IMPLEMENTATION_OPTIONS = frozenset({"foreach", "fused", "capturable", "differentiable"})


def _torch():
    try:
        import torch
    except ImportError:
        raise ValueError("torch optimizers need torch: pip install torch==2.13.0") from None
    return torch


def resolve(name):
    """The torch.optim class that ``name`` means: ``"torch.optim.Adam"`` (as given), or
    ``"torch_adam"`` (a spec's name, read back from a result table); None for other names."""
    if not isinstance(name, str):
        return None
    if name.startswith(NAME_PREFIX):
        torch = _torch()
        cls = getattr(torch.optim, name[len(NAME_PREFIX) :], None)
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
            raise ValueError(f"torch.optim has no optimizer class {name[len(NAME_PREFIX) :]!r}")
        return cls
    if name.lower().startswith("torch_"):
        torch = _torch()
        wanted = name.lower()[len("torch_") :]
        for attribute in dir(torch.optim):
            cls = getattr(torch.optim, attribute)
            if (
                isinstance(cls, type)
                and issubclass(cls, torch.optim.Optimizer)
                and attribute.lower() == wanted
            ):
                return cls
    return None


@functools.cache
def torch_spec(torch_class):
    """The unfused :class:`~optbench.spec.OptimizerSpec` of ``torch_class`` (a subclass of
    ``torch.optim.Optimizer``), named ``torch_<class>`` (``torch_adamw``)."""
    torch = _torch()
    if not (isinstance(torch_class, type) and issubclass(torch_class, torch.optim.Optimizer)):
        raise TypeError(f"expected a torch.optim.Optimizer subclass, got {torch_class!r}")
    title = torch_class.__name__
    hyperparameters = _hyperparameters(torch_class, title)
    defaults = {h.name: h.default for h in hyperparameters}
    always = _probe(torch_class, defaults, title)
    state = [State(name) for name in always]
    for h in hyperparameters:
        switched = _switched_on(h, defaults)
        if switched is None:
            continue
        for name in _probe(torch_class, switched, title):
            if name not in always and name not in {s.name for s in state}:
                state.append(State(name, used_when=h.name))
    variants = [Variant("default", {}, "torch's defaults")]
    variants += _flag_variants(torch_class, hyperparameters, defaults)
    return OptimizerSpec(
        name=f"torch_{re.sub(r'[^a-z0-9_]', '_', title.lower())}",
        class_name=f"Torch{title}",
        summary=f"torch.optim.{title}, stepped by torch array by array (unfused).",
        doc=f"``torch.optim.{title}`` over NumPy arrays; see torch's documentation.",
        hyperparameters=tuple(hyperparameters),
        state=tuple(state),
        chunk=None,
        reference=functools.partial(_torch_update, torch_class),
        lr=float(defaults["lr"]),
        variants=tuple(variants),
        search_space={"lr": LogUniform(1e-5, 1.0)},
        check=functools.partial(_torch_check, torch_class),
    )


def _hyperparameters(torch_class, title):
    found = []
    for name, parameter in inspect.signature(torch_class).parameters.items():
        default = parameter.default
        if name == "params" or name in _IMPLEMENTATION_OPTIONS:
            continue
        if isinstance(default, bool):
            found.append(Flag(name, default, kernel=False, keyword_only=name == "maximize"))
        elif isinstance(default, float | int) and math.isfinite(default):
            found.append(Real(name, float(default), low=-math.inf, kernel=False))
        elif isinstance(default, tuple) and all(isinstance(v, float | int) for v in default):
            values = tuple(float(v) for v in default)
            found.append(Reals(name, values, low=-math.inf, high=math.inf, kernel=False))
    names = [h.name for h in found]
    for required in ("lr", "maximize"):
        if required not in names:
            raise ValueError(f"torch.optim.{title} has no float {required!r} option")
    return found


def _flag_variants(torch_class, hyperparameters, defaults):
    """A variant per flag: the flag on, with a zero rate switched on where torch needs one
    (SGD's ``nesterov`` needs ``momentum``)."""
    zero_rates = [h.name for h in hyperparameters if isinstance(h, Real) and h.default == 0.0]
    variants = []
    for h in hyperparameters:
        if not isinstance(h, Flag) or h.default or h.name == "maximize":
            continue
        for options in ({h.name: True}, *({h.name: True, r: 0.5} for r in zero_rates)):
            try:
                _torch_check(torch_class, {**defaults, **options})
            except ValueError:
                continue
            described = ", ".join(f"{k}={v}" for k, v in options.items())
            variants.append(Variant(h.name, options, described))
            break
    return variants


def _switched_on(h, defaults):
    """The defaults with ``h`` turned on (a flag True, a zero rate 0.5), or None."""
    if isinstance(h, Flag) and not h.default and h.name != "maximize":
        return {**defaults, h.name: True}
    if isinstance(h, Real) and h.default == 0.0:
        return {**defaults, h.name: 0.5}
    return None


def _probe(torch_class, options, title):
    """Names of the parameter-sized state tensors after one step with ``options``."""
    torch = _torch()
    tensor = torch.zeros(3, dtype=torch.float64)
    try:
        opt = torch_class([tensor], **options)
    except (TypeError, ValueError):
        return []  # a combination torch refuses (SGD's nesterov without momentum)
    tensor.grad = torch.ones(3, dtype=torch.float64)
    opt.step()
    names = []
    for name, value in opt.state[tensor].items():
        if name == "step":
            continue
        if not (torch.is_tensor(value) and value.shape == tensor.shape):
            raise ValueError(
                f"torch.optim.{title} keeps {name!r} per parameter, not a tensor of the "
                "parameter's shape: only 'step' and such tensors can be saved by optbench"
            )
        names.append(name)
    return names


def _torch_check(torch_class, options):
    """torch's own validation of ``options``, at construction (``ValueError``)."""
    torch = _torch()
    accepted = inspect.signature(torch_class).parameters
    options = {k: v for k, v in options.items() if k in accepted and k != "params"}
    try:
        torch_class([torch.zeros(1, dtype=torch.float64)], **options)
    except (TypeError, RuntimeError) as error:
        raise ValueError(str(error)) from None


def _torch_update(torch_class, param, grad, state, step, **options):
    """One step of ``torch_class`` on ``param`` (in place), from ``state`` (updated in place)."""
    torch = _torch()
    tensor = torch.from_numpy(param)
    opt = torch_class([tensor], **options)
    tensor.grad = torch.from_numpy(np.require(grad, requirements="C"))  # 0-d stays 0-d
    if step > 1:
        saved = {"step": torch.tensor(float(step - 1), dtype=torch.float64)}
        saved.update({k: torch.from_numpy(np.array(v, param.dtype)) for k, v in state.items()})
        opt.state[tensor] = saved
    opt.step()
    for name, value in opt.state[tensor].items():
        if name != "step":
            state[name] = value.numpy().copy()
