"""``optbench list``: the problems, optimizers and schedules, with their options."""

from .. import problems, registry, runner, schedules
from ..spec import Choice, LogUniform, OneMinusLogUniform
from . import UsageError

SECTIONS = ("problems", "optimizers", "schedules")
# The extras every optimizer takes (optbench.optim.Optimizer), which its own docstring omits.
EXTRA_HELP = {
    "clip_value": "clip every gradient element to [-clip_value, clip_value] (none: off)",
    "l1": "L1 penalty: adds l1 * sign(p) to the gradient",
    "max_norm": "rescale each column of a 2-D weight to L2 norm <= max_norm (none: off)",
    "clip_norm": "scale the gradients so that their global L2 norm is <= clip_norm (none: off)",
    "nonfinite": "a NaN/Inf gradient: propagate, raise or skip the step",
}


def add_arguments(parser):
    parser.add_argument(
        "what",
        nargs="*",
        metavar="SECTION",
        help=f"list only these sections ({', '.join(SECTIONS)}); default: all",
    )


def _problems():
    lines = ["problems"]
    for name, cls in problems.PROBLEMS.items():
        lines.append(f"  {name:20} {cls.description}")
        for option, spec in cls.options.items():
            lines.append(f"      {option:24} {spec.describe()}")
    return lines


def _optimizers():
    lines = ["optimizers (--optimizer NAME --lr X --opt KEY=VALUE)"]
    for spec in registry.specs():
        kind = "" if spec.fused else " (unfused: stepped array by array)"
        lines.append(f"  {spec.name:20} {spec.class_name}, default lr {spec.lr:g}{kind}")
        for h in spec.hyperparameters:
            if h.in_signature and h.name != "lr":
                doc = f": {h.doc}" if h.doc else ""
                lines.append(f"      {h.name:24} {h.describe()}{doc}")
        space = ", ".join(f"{key} {_dimension(d)}" for key, d in spec.search_space.items())
        lines.append(f"      {'search space':24} {space} (optbench tune)")
    lines.append("  every optimizer also takes")
    defaults = runner.optimizer_option_defaults(registry.OPTIMIZERS[0])
    for option, text in EXTRA_HELP.items():
        lines.append(f"      {option:24} {text} (default {defaults[option]!r})")
    return lines


def _dimension(dimension):
    """``log[1e-05, 0.1]``, ``1-log[0.001, 0.5]``, ``[0, 0.99]`` or ``{False, True}``."""
    if isinstance(dimension, Choice):
        return "{" + ", ".join(map(str, dimension.values)) + "}"
    bounds = f"[{dimension.low:g}, {dimension.high:g}]"
    prefix = {LogUniform: "log", OneMinusLogUniform: "1-log"}.get(type(dimension), "")
    return prefix + bounds


def _schedule_option(option, spec):
    if spec.default is None:
        default = "from the run's length"
    elif isinstance(spec.default, str):
        default = repr(spec.default)
    else:
        default = f"{spec.default:g}"
    return f"      {option:24} {spec.help} ({spec.type.__name__}, default {default})"


def _schedules():
    lines = ["schedules (--schedule NAME --schedule-opt KEY=VALUE; lr is the run's --lr)"]
    for name, info in schedules.SCHEDULES.items():
        lines.append(f"  {name:20} {info.description}")
        lines.extend(_schedule_option(o, spec) for o, spec in info.options.items())
    lines.append("  every schedule also takes")
    lines.extend(_schedule_option(o, spec) for o, spec in schedules.WARMUP_OPTIONS.items())
    return lines


def command(args):
    unknown = [section for section in args.what if section not in SECTIONS]
    if unknown:
        raise UsageError(f"unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    chosen = args.what or SECTIONS
    builders = {"problems": _problems, "optimizers": _optimizers, "schedules": _schedules}
    blocks = ["\n".join(builders[section]()) for section in SECTIONS if section in chosen]
    print("\n\n".join(blocks))
    return 0
