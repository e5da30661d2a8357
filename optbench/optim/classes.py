"""The optimizer classes, each made from its spec: the constructor's signature, its validation
and its docstring come from the spec's hyperparameters.

``optimizer_class(spec)`` makes (once) the class of any spec, a plugin's included; it lives in
``optbench.optim`` under ``spec.class_name``, so that its objects pickle by name.
"""

import inspect
import textwrap

from .. import algorithms, registry
from .base import Optimizer

_EXTRAS = tuple(
    parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
    for name, parameter in inspect.signature(Optimizer.__init__).parameters.items()
    if name not in ("self", "params", "defaults")
)
_classes = {}  # spec -> class


def optimizer_class(spec):
    """The :class:`Optimizer` subclass of ``spec`` (an ``OptimizerSpec`` or a registered name)."""
    spec = registry.get(spec)
    made = _classes.get(spec)
    if made is None:
        made = _classes[spec] = _make_class(spec)
    return made


def _signature(spec):
    self_and_params = [
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]
    positional, keyword = [], []
    for h in spec.hyperparameters:
        if not h.in_signature:
            continue
        kind = (
            inspect.Parameter.KEYWORD_ONLY
            if h.keyword_only
            else inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        (keyword if h.keyword_only else positional).append(
            inspect.Parameter(h.name, kind, default=h.default)
        )
    return inspect.Signature([*self_and_params, *positional, *keyword, *_EXTRAS])


def _docstring(spec):
    lines = [
        spec.summary,
        "",
        textwrap.dedent(spec.doc).strip("\n"),
        "",
        "Parameters",
        "----------",
    ]
    lines.append("params : list of arrays, or of parameter-group dicts")
    for h in spec.hyperparameters:
        if h.in_signature:
            lines.append(f"{h.name} : {h.describe()}")
            if h.doc:
                lines.append(f"    {h.doc}")
    lines.append("clip_value, l1, max_norm, clip_norm, nonfinite, flush_denormals, dispatch :")
    lines.append("    the options of every optimizer (see :class:`optbench.optim.Optimizer`)")
    return "\n".join(lines) + "\n"


def _make_class(spec):
    signature = _signature(spec)
    hyper_names = [h.name for h in spec.hyperparameters]
    fixed = {h.name: h.default for h in spec.hyperparameters if not h.in_signature}
    extra_names = [p.name for p in _EXTRAS]

    def __init__(self, params, *args, **kwargs):
        bound = signature.bind(self, params, *args, **kwargs)
        bound.apply_defaults()
        values = bound.arguments
        defaults = {name: values[name] if name in values else fixed[name] for name in hyper_names}
        extras = {name: values[name] for name in extra_names}
        Optimizer.__init__(self, params, defaults, **extras)

    __init__.__signature__ = signature
    __init__.__qualname__ = f"{spec.class_name}.__init__"
    return type(
        spec.class_name,
        (Optimizer,),
        {
            "spec": spec,
            "__init__": __init__,
            "__doc__": _docstring(spec),
            "__module__": "optbench.optim",
            "__qualname__": spec.class_name,
        },
    )


SGD = optimizer_class(algorithms.SGD)
Adagrad = optimizer_class(algorithms.ADAGRAD)
RMSprop = optimizer_class(algorithms.RMSPROP)
Adam = optimizer_class(algorithms.ADAM)
AdamW = optimizer_class(algorithms.ADAMW)
Adamax = optimizer_class(algorithms.ADAMAX)
RAdam = optimizer_class(algorithms.RADAM)
Lion = optimizer_class(algorithms.LION)
NAdam = optimizer_class(algorithms.NADAM)
AdaBound = optimizer_class(algorithms.ADABOUND)
