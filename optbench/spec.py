"""The declaration of an optimizer: one :class:`OptimizerSpec` from which optbench derives the
class (its signature, validation and docstring), the kernels' hyperparameter row, the state
table, the generic tests, the benchmark grids and the reports.

A spec states by name what the kernel reads by position:

* ``hyperparameters``, in the order of the torch-style constructor; those with ``kernel=True``
  form the kernel's row ``hp`` in that order (a :class:`Reals` gives one value per element),
  followed by the ``derived`` values that ``prepare_step`` computes before every step;
* ``state``, the buffers of parameter size, in the order of the kernel's ``state`` rows.

``spec.kernel_names`` and ``spec.state_names`` list both, so that a chunk kernel can be checked
against them by eye. ``dataclasses.replace(spec, name=..., ...)`` declares a new optimizer.
"""

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType

from . import validation

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*\Z")
CLASS_NAME_PATTERN = re.compile(r"[A-Z][A-Za-z0-9_]*\Z")
# options of every optimizer, handled by the base class (see optbench.optim)
COMMON_OPTIONS = ("maximize", "clip_value", "l1", "max_norm")


class SpecError(ValueError):
    """A malformed spec; the message names the spec and the field."""


# --------------------------------------------------------------------------------------------
# hyperparameters
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hyperparameter:
    """One option of a parameter group.

    name : the option's name (a Python identifier).
    default : its default value.
    kernel : whether the chunk kernel reads it (its values join the row ``hp``).
    keyword_only : placed after ``*`` in the constructor's signature.
    in_signature : a constructor argument (False: set only through a group dict).
    default_from : when the value is ``None`` as a group is created, that option's value is
        used instead (AdaBound's ``base_lr`` is the group's ``lr`` at construction).
    doc : one line for the class docstring.
    """

    name: str
    default: object
    _: KW_ONLY
    kernel: bool = True
    keyword_only: bool = False
    in_signature: bool = True
    default_from: str | None = None
    doc: str = ""

    @property
    def kernel_names(self):
        """Names of the values this option gives the kernel's row, in order."""
        return (self.name,) if self.kernel else ()

    def kernel_values(self, value):
        """Validate ``value``; return the floats the kernel reads (raise naming the option)."""
        raise NotImplementedError

    def describe(self):
        """``"float in [0, 1) (default 0.9)"``: the docstring's line for this option."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Real(Hyperparameter):
    """A finite real number in ``[low, high]`` (either end open when asked).

    none_means : where not None, ``None`` is accepted too and the kernel reads this value
        (AdEMAMix's ``alpha_warmup=None`` is a warm-up of 0 steps).
    infinite : ``math.inf`` is accepted too (Prodigy's unbounded ``growth_rate``).
    """

    low: float = 0.0
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    none_means: float | None = None
    infinite: bool = False

    def kernel_values(self, value):
        if value is None and self.none_means is not None:
            return (float(self.none_means),)
        if self.infinite and validation.is_real(value) and value == math.inf:
            return (math.inf,)
        return (validation.real(self.name, value, self.low, self.high, **self._ends),)

    @property
    def _ends(self):
        return {"low_open": self.low_open, "high_open": self.high_open}

    def describe(self):
        interval = validation.interval(self.low, self.high, **self._ends)
        kind = "float or None" if self.none_means is not None else "float"
        if self.infinite:
            interval += " or inf"
        return f"{kind}, {interval} (default {self.default!r})"


@dataclass(frozen=True, kw_only=True)
class Flag(Hyperparameter):
    """``True`` or ``False``; the kernel reads 1.0 or 0.0."""

    def kernel_values(self, value):
        return (float(validation.flag(self.name, value)),)

    def describe(self):
        return f"bool (default {self.default!r})"


@dataclass(frozen=True, kw_only=True)
class Reals(Hyperparameter):
    """A tuple of real numbers, each in ``[low, high]`` (``betas``); the kernel reads each,
    named ``names`` (by default ``name[0]``, ``name[1]``, ...). The positions in ``nullable``
    may also be None (Adafactor's ``eps=(None, 1e-3)``), which the kernel reads as NaN."""

    low: float = 0.0
    high: float = 1.0
    low_open: bool = False
    high_open: bool = True
    names: tuple[str, ...] = ()
    nullable: tuple[int, ...] = ()

    @property
    def kernel_names(self):
        if not self.kernel:
            return ()
        return self.names or tuple(f"{self.name}[{i}]" for i in range(len(self.default)))

    def kernel_values(self, value):
        size = len(self.default)
        if not isinstance(value, tuple | list) or len(value) != size:
            raise TypeError(f"{self.name} must be a tuple of {size} numbers, got {value!r}")
        ends = {"low_open": self.low_open, "high_open": self.high_open}
        return tuple(
            math.nan
            if v is None and i in self.nullable
            else validation.real(f"{self.name}[{i}]", v, self.low, self.high, **ends)
            for i, v in enumerate(value)
        )

    def describe(self):
        ends = {"low_open": self.low_open, "high_open": self.high_open}
        interval = validation.interval(self.low, self.high, **ends)
        kind = f"tuple of {len(self.default)} floats"
        if self.nullable:
            kind += f" (None allowed at {', '.join(map(str, self.nullable))})"
        each = f", each {interval}" if interval else ""
        return f"{kind}{each} (default {self.default!r})"


@dataclass(frozen=True, kw_only=True)
class Integer(Hyperparameter):
    """An integer in ``[low, high]`` (Muon's ``ns_steps``); the kernel reads it as a float."""

    low: int = 0
    high: int | None = None

    def kernel_values(self, value):
        number = validation.integer(self.name, value, self.low)
        if self.high is not None and number > self.high:
            raise ValueError(
                f"{self.name} must be an integer in [{self.low}, {self.high}], got {value!r}"
            )
        return (float(number),)

    def describe(self):
        upper = "" if self.high is None else f" and <= {self.high}"
        return f"int >= {self.low}{upper} (default {self.default!r})"


@dataclass(frozen=True, kw_only=True)
class OneOf(Hyperparameter):
    """One of ``choices`` (Muon's ``adjust_lr_fn``: None or a name); the kernel reads its
    position in ``choices``."""

    choices: tuple = ()

    def kernel_values(self, value):
        for position, choice in enumerate(self.choices):
            if value is choice or (type(value) is type(choice) and value == choice):
                return (float(position),)
        raise ValueError(f"{self.name} must be one of {self.choices!r}, got {value!r}")

    def describe(self):
        return f"one of {', '.join(map(repr, self.choices))} (default {self.default!r})"


@dataclass(frozen=True, kw_only=True)
class Constant(Hyperparameter):
    """An option fixed at its default (AdamW's ``decoupled_weight_decay=True``): listed in the
    groups and the state dict, read by the kernel, refused at any other value (``doc`` says
    why)."""

    in_signature: bool = False

    def kernel_values(self, value):
        if value is not self.default and value != self.default:
            raise ValueError(f"{self.name} must be {self.default!r}: {self.doc}, got {value!r}")
        return (float(self.default),)

    def describe(self):
        return f"always {self.default!r}"


# --------------------------------------------------------------------------------------------
# memory traffic
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pass:
    """One pass of a step over arrays of the parameter's size, by the arrays it touches:
    ``reads`` only read, ``updates`` read and written back in place, ``writes`` written without
    being read. It moves ``words = reads + 2 updates + writes`` words per element; the roofline
    of ``optbench throughput`` times a STREAM-style kernel of the same passes
    (:mod:`optbench.bandwidth`).

    Adam: ``Pass(reads=1, updates=3)`` (read g; read and write p, m, v), 7 words.
    """

    reads: int = 0
    updates: int = 0
    writes: int = 0

    def __post_init__(self):
        for name in ("reads", "updates", "writes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SpecError(f"Pass: {name} must be an int >= 0, got {value!r}")
        if self.reads + self.updates + self.writes == 0:
            raise SpecError("Pass: touches no array (reads, updates and writes are all 0)")

    @property
    def words(self):
        return self.reads + 2 * self.updates + self.writes

    @property
    def label(self):
        """``"1r 3u"``: the counts of read (r), updated (u) and written (w) arrays."""
        counts = (("r", self.reads), ("u", self.updates), ("w", self.writes))
        return " ".join(f"{count}{letter}" for letter, count in counts if count)


# --------------------------------------------------------------------------------------------
# state
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class State:
    """A state buffer of the parameter's size, named as in torch's ``state_dict``.

    used_when : the option whose true (non-zero) value makes the kernel use this buffer; None
        for a buffer always in use. Unused buffers are left out of ``state_dict``.
    initial : the buffer's value before the first step: a number, or the name of the option
        holding it (Adagrad's ``initial_accumulator_value``).
    shape : for a buffer not of the parameter's shape (Adafactor's factored second moments),
        ``shape(param_shape) -> tuple | None``: the buffer's shape, or None where an array of
        that shape keeps no such buffer. Only an unfused spec (no chunk kernel) declares one:
        the kernels address buffers of parameter size.
    """

    name: str
    used_when: str | None = None
    initial: float | str = 0.0
    shape: Callable | None = None

    def shape_for(self, param_shape):
        """The buffer's shape for an array of ``param_shape``, or None if it keeps none."""
        return tuple(param_shape) if self.shape is None else self.shape(tuple(param_shape))


@dataclass(frozen=True)
class GroupScalar:
    """A float64 value per parameter group that ``prepare_step`` updates (NAdam's product of
    momentum factors); listed per array in ``state_dict``, as torch lists it. ``initial`` is
    a number or the name of the option holding it (Prodigy's ``d`` starts at ``d0``)."""

    name: str
    initial: float | str = 0.0
    low: float = -math.inf
    high: float = math.inf

    def check(self, where, value):
        return validation.real(f"{where}[{self.name!r}]", value, self.low, self.high)


# --------------------------------------------------------------------------------------------
# tests, tuning
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """Options that exercise part of the math; test ids read ``{spec.name}-{id}``."""

    id: str
    options: Mapping = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class ErrorInput:
    """Constructor options that must be refused with ``error`` whose message matches ``match``
    (a regular expression), before any array is touched."""

    options: Mapping
    error: type = ValueError
    match: str = ""


@dataclass(frozen=True)
class LogUniform:
    """``exp(uniform(log(low), log(high)))``: learning rates, eps, weight decay."""

    low: float
    high: float

    def value(self, u):
        """The value at ``u`` in [0, 1) of the unit interval."""
        return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))


@dataclass(frozen=True)
class OneMinusLogUniform:
    """``1 - x`` with ``x`` log-uniform in ``[low, high]``: decay rates near 1 (momentum, a
    beta), sampled as densely between 0.99 and 0.999 as between 0.9 and 0.99."""

    low: float
    high: float

    def value(self, u):
        return 1.0 - LogUniform(self.low, self.high).value(1.0 - u)


@dataclass(frozen=True)
class Uniform:
    """``uniform(low, high)``."""

    low: float
    high: float

    def value(self, u):
        return self.low + u * (self.high - self.low)


@dataclass(frozen=True)
class Choice:
    """One of ``values``, each as likely."""

    values: tuple

    def value(self, u):
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]


DIMENSIONS = (LogUniform, OneMinusLogUniform, Uniform, Choice)
ELEMENT_KEY = re.compile(r"(?P<name>[a-z_][a-z0-9_]*)\[(?P<index>[0-9]+)\]\Z")


# --------------------------------------------------------------------------------------------
# the spec
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class OptimizerSpec:
    """Everything optbench needs to build, check, benchmark and report one optimizer.

    name : lower-case name for the command line and result tables (``"adam"``).
    class_name : the class's name in ``optbench.optim`` (``"Adam"``).
    summary : one line: the algorithm and its source.
    doc : the formula (reStructuredText math), for the class docstring.
    hyperparameters : the options, in constructor order (see the module docstring).
    state : the state buffers, in the kernel's row order.
    chunk : the Numba chunk kernel ``chunk(param, grad, state, column, common, hp, step)``
        (see ``optbench.kernels.drivers``), or None for an unfused optimizer: ``reference`` is
        then its update, called array by array on the state (slower; reports mark it).
    reference : the NumPy oracle ``reference(param, grad, state, step, **options)``.
    update : for an unfused spec, a faster version of ``reference`` that the optimizer steps
        with: ``update(param, grad, state, step, workspace, **options)`` writes the parameter
        and the buffers of ``state`` (views into the optimizer's state) in place, and may keep
        scratch buffers in ``workspace``, a dict the optimizer holds between steps and never
        saves; ``grad`` is read only. The conformance checks compare it with ``reference``.
    lr : a learning rate at which the optimizer makes steady progress on a unit-scale problem
        (benchmarks and the quick report use it).
    variants : option sets that together exercise every option that changes the math; the
        first is the defaults.
    error_inputs : options the constructor must refuse, with the message expected.
    converges : ``{problem name: options}`` that reach the problem's optimum.
    search_space : ``{option: LogUniform | OneMinusLogUniform | Uniform | Choice}`` for
        tuning (:mod:`optbench.tuning`); ``lr`` at least. A key ``name[i]`` searches element
        ``i`` of a tuple option (``betas[0]``: beta1), its other elements kept.
    torch_peer : the ``torch.optim`` class with the same algorithm, or None.
    inplace_peer : ``update(param, grad, state, scratch, step, options)``, a NumPy version that
        writes into preallocated buffers (``optbench.reference.inplace``), or None.
    inplace_scratch : scratch buffers of parameter size ``inplace_peer`` needs.
    check : ``check(options)`` raises ``ValueError`` for a combination of valid options that
        the algorithm refuses (SGD's Nesterov without momentum), or None.
    derived : names of the values ``prepare_step`` appends to the kernel row each step.
    group_scalars : per-group float64 values ``prepare_step`` keeps.
    prepare_step : ``prepare_step(options, step, scalars) -> derived values``, called once a
        step is certain to run, with ``step`` the step about to be taken (1 first) and
        ``scalars`` the group's dict of ``group_scalars``, which it updates in place.
    reduce, reductions : for an optimizer that needs per-array sums before its update (LAMB's
        trust ratio): ``reduce(param, grad, state, column, common, hp, step, ndim, sums)``, a
        Numba function that may update the state and writes its run's partial sums, named by
        ``reductions``, into ``sums``; the partial sums of each array are then added in chunk
        order (the same bits for any thread count) and the chunk kernel takes two more
        arguments, ``ndim`` (the array's) and ``totals`` (the array's sums).
    combine, combined : for an optimizer whose update needs sums over every array it steps
        (Prodigy's estimate of the distance to the solution): ``combine(sums, groups,
        scalars)``, called between the reduce pass and the update, with ``sums[g]`` the
        totals of group ``g``'s arrays (float64, added in the order of the optimizer's
        arrays), ``groups`` the groups' options and ``scalars`` their ``group_scalars``
        (shared: the first group's are every group's, and ``combine`` updates them in place);
        it returns, per group, the values named by ``combined`` (written after the
        ``derived`` values of the kernel row for the update), or None to skip the update.
        Such a spec's ``reference`` steps every array together: ``reference(params, grads,
        states, step, options)``, ``options`` the group options of each array.
    traffic : ``traffic(options) -> passes``, a tuple of :class:`Pass`, the arrays a step
        touches pass by pass, where the usual single pass is not right: a spec with a reduce
        pass (LAMB: ``(Pass(reads=2, updates=2), Pass(reads=2, updates=1))``, 10 words). The
        usual pass reads the gradient and updates the parameter and each state buffer in use
        (``Pass(reads=1, updates=1 + buffers)``). ``optbench throughput`` divides the bytes by
        the time and times the same passes as the roofline.
    ndims : the numbers of dimensions of the arrays the optimizer takes (Muon: ``(2,)``), or
        None for any; the constructor refuses other arrays, naming them, and the conformance
        checks reshape their arrays to fit (:func:`conforming_shape`).
    hidden_matrices : True for an optimizer that tells weight matrices from the other arrays
        by their number of dimensions (Muon with AdamW): the runner then gives it a problem's
        hidden weight matrices as 2-D arrays (a convolution's filters as ``(C_out, C_in K)``)
        and every other array (embeddings, the output layer, biases, gains) as 1-D
        (:meth:`optbench.problems.Problem.as_matrices`), views of the same memory.
    to_eval, to_train : for an optimizer whose parameters hold a training point other than
        the weights to evaluate (Schedule-Free's y and x), ``f(param, state, options)`` moves
        one array from one to the other in place, ``state`` its buffers by name (views);
        both or neither. With them, ``optimizer.eval()`` and ``optimizer.train()`` switch,
        and ``step`` refuses to run in eval mode.
    """

    name: str
    class_name: str
    summary: str
    doc: str
    hyperparameters: tuple[Hyperparameter, ...]
    state: tuple[State, ...]
    chunk: Callable | None
    reference: Callable
    lr: float
    update: Callable | None = None
    variants: tuple[Variant, ...] = (Variant("default", {}, "the defaults"),)
    error_inputs: tuple[ErrorInput, ...] = ()
    converges: Mapping = field(default_factory=dict)
    search_space: Mapping = field(default_factory=dict)
    torch_peer: str | None = None
    inplace_peer: Callable | None = None
    inplace_scratch: int = 1
    check: Callable | None = None
    derived: tuple[str, ...] = ()
    group_scalars: tuple[GroupScalar, ...] = ()
    prepare_step: Callable | None = None
    reduce: Callable | None = None
    reductions: tuple[str, ...] = ()
    combine: Callable | None = None
    combined: tuple[str, ...] = ()
    traffic: Callable | None = None
    ndims: tuple[int, ...] | None = None
    hidden_matrices: bool = False
    to_eval: Callable | None = None
    to_train: Callable | None = None

    def __post_init__(self):
        for name in (
            "hyperparameters",
            "state",
            "variants",
            "error_inputs",
            "derived",
            "reductions",
            "combined",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "group_scalars", tuple(self.group_scalars))
        if self.ndims is not None:
            object.__setattr__(self, "ndims", tuple(self.ndims))
        for name in ("converges", "search_space"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        _check_spec(self)

    # ------------------------------------------------------------------ derived views
    @functools.cached_property  # read at every step of a spec with ``prepare_step``
    def kernel_names(self):
        """The kernel's hyperparameter row ``hp``, by name, in order."""
        own = (n for h in self.hyperparameters for n in h.kernel_names)
        return (*own, *self.derived, *self.combined)

    @functools.cached_property
    def state_names(self):
        return tuple(s.name for s in self.state)

    @functools.cached_property
    def table_names(self):
        """The buffers of parameter size, in the rows of the optimizer's state table (every
        buffer but those with a ``shape``)."""
        return tuple(s.name for s in self.state if s.shape is None)

    @property
    def defaults(self):
        """``{option: default}`` of every hyperparameter (``maximize`` included)."""
        return {h.name: h.default for h in self.hyperparameters}

    @property
    def switches_weights(self):
        """Whether the parameters hold other weights in eval mode (see ``to_eval``)."""
        return self.to_eval is not None

    @property
    def coupled(self):
        """Whether every array's update depends on all the others (see ``combine``)."""
        return self.combine is not None

    @property
    def fused(self):
        """Whether a Numba chunk kernel updates it (else its NumPy reference does)."""
        return self.chunk is not None

    @property
    def label(self):
        """The name as reports show it: ``"adam"``, or ``"name (unfused)"``."""
        return self.name if self.fused else f"{self.name} (unfused)"

    def takes(self, shape):
        """Whether the optimizer takes an array of ``shape`` (see ``ndims``)."""
        return self.ndims is None or len(shape) in self.ndims

    def hyperparameter(self, name):
        for h in self.hyperparameters:
            if h.name == name:
                return h
        raise KeyError(name)

    def kernel_row(self, group):
        """Validate a group's options; return the kernel's row (``derived`` as NaN)."""
        row = []
        for h in self.hyperparameters:
            values = h.kernel_values(group[h.name])
            if h.kernel:
                row.extend(values)
        if self.check is not None:
            self.check(group)
        return (*row, *(math.nan for _ in (*self.derived, *self.combined)))

    def passes(self, group, param_shape=None):
        """The passes of a step over arrays of ``param_shape`` with the group's options, a
        tuple of :class:`Pass`: ``traffic(group)`` where the spec declares it, else one pass
        that reads the gradient and updates the parameter and each buffer in use. Raises
        ``TypeError`` naming the spec when ``traffic`` gives anything else."""
        if self.traffic is None:
            return (Pass(reads=1, updates=1 + len(self.state_in_use(group, param_shape))),)
        passes = self.traffic(group)
        passes = (passes,) if isinstance(passes, Pass) else passes
        valid = isinstance(passes, tuple | list) and all(isinstance(p, Pass) for p in passes)
        if not (valid and passes):
            raise TypeError(
                f"optimizer {self.name!r}: traffic(options) must give a tuple of spec.Pass, "
                f"got {passes!r}"
            )
        return tuple(passes)

    def state_in_use(self, group, param_shape=None):
        """Names of the buffers the group's options use, in row order; with ``param_shape``,
        only those an array of that shape keeps."""
        return tuple(
            s.name
            for s in self.state
            if (s.used_when is None or group[s.used_when])
            and (param_shape is None or s.shape_for(param_shape) is not None)
        )


def _check_spec(spec):
    """Raise :class:`SpecError` naming the spec and the field of the first malformation."""

    def fail(what):
        raise SpecError(f"optimizer spec {spec.name!r}: {what}")

    if not isinstance(spec.name, str) or not NAME_PATTERN.match(spec.name):
        fail("name must be lower-case letters, digits and '_', starting with a letter")
    if not isinstance(spec.class_name, str) or not CLASS_NAME_PATTERN.match(spec.class_name):
        fail("class_name must be a capitalized Python identifier")
    if not all(isinstance(h, Hyperparameter) for h in spec.hyperparameters):
        fail("hyperparameters must be Real, Flag, Reals, Integer, OneOf or Constant declarations")
    names = [h.name for h in spec.hyperparameters]
    if len(set(names)) != len(names):
        fail(f"hyperparameter names repeat: {names}")
    for scalar in spec.group_scalars:
        if isinstance(scalar.initial, str) and scalar.initial not in names:
            fail(f"group scalar {scalar.name!r}: initial names no hyperparameter")
    for required in ("lr", "maximize"):
        if required not in names:
            fail(f"declares no {required!r} hyperparameter")
    if spec.hyperparameter("maximize").kernel:
        fail("'maximize' is applied by the base class: declare it with kernel=False")
    clashes = set(names) & (set(COMMON_OPTIONS) - {"maximize"})
    if clashes:
        fail(f"hyperparameters {sorted(clashes)} are options of every optimizer")
    for h in spec.hyperparameters:
        if h.default_from is not None and h.default_from not in names:
            fail(f"{h.name}.default_from names no hyperparameter: {h.default_from!r}")
        if h.default is not None or h.default_from is None:
            try:
                h.kernel_values(h.default)
            except (TypeError, ValueError) as error:
                fail(f"the default of {h.name} is invalid: {error}")
    states = [s.name for s in spec.state]
    if len(set(states)) != len(states):
        fail(f"state names repeat: {states}")
    for s in spec.state:
        if s.used_when is not None and s.used_when not in names:
            fail(f"state {s.name!r}: used_when names no hyperparameter: {s.used_when!r}")
        if isinstance(s.initial, str) and s.initial not in names:
            fail(f"state {s.name!r}: initial names no hyperparameter: {s.initial!r}")
        if s.shape is not None and not callable(s.shape):
            fail(f"state {s.name!r}: shape must be a function of the parameter's shape")
        if s.shape is not None and spec.chunk is not None:
            fail(f"state {s.name!r} has its own shape: only an unfused spec (chunk=None) has one")
    if not callable(spec.reference):
        fail("reference must be a function")
    if spec.chunk is not None and not callable(spec.chunk):
        fail("chunk must be a Numba function")
    if spec.update is not None and (spec.chunk is not None or not callable(spec.update)):
        fail("update must be a function, and only an unfused spec (chunk=None) has one")
    if not (validation.is_real(spec.lr) and spec.lr > 0 and math.isfinite(spec.lr)):
        fail(f"lr must be a finite number > 0, got {spec.lr!r}")
    if bool(spec.derived) != (spec.prepare_step is not None):
        fail("derived values need a prepare_step, and a prepare_step needs derived values")
    if spec.group_scalars and spec.prepare_step is None:
        fail("group_scalars need a prepare_step that updates them")
    if (spec.reduce is None) != (not spec.reductions):
        fail("reduce and reductions come together: the sums and the names of the sums")
    if spec.reduce is not None and spec.chunk is None:
        fail("reduce needs a chunk kernel that reads its sums")
    if (spec.combine is None) != (not spec.combined):
        fail("combine and combined come together: the function and the names of its values")
    if spec.combine is not None and (spec.reduce is None or not callable(spec.combine)):
        fail("combine must be a function, and needs a reduce pass whose sums it combines")
    if spec.ndims is not None and (
        not spec.ndims or not all(isinstance(n, int) and n >= 0 for n in spec.ndims)
    ):
        fail("ndims must be None or a non-empty tuple of integers >= 0")
    if not isinstance(spec.hidden_matrices, bool):
        fail(f"hidden_matrices must be True or False, got {spec.hidden_matrices!r}")
    if spec.hidden_matrices and spec.ndims is not None and not {1, 2} <= set(spec.ndims):
        fail("hidden_matrices gives 1-D and 2-D arrays: ndims must allow both")
    if (spec.to_eval is None) != (spec.to_train is None):
        fail("to_eval and to_train come together: one moves the parameters, one moves back")
    for name in ("to_eval", "to_train", "traffic"):
        if getattr(spec, name) is not None and not callable(getattr(spec, name)):
            fail(f"{name} must be a function")
    _check_examples(spec, names, fail)


def _check_examples(spec, names, fail):
    if not spec.variants:
        fail("declares no variants (the first must be the defaults)")
    ids = [v.id for v in spec.variants]
    if len(set(ids)) != len(ids):
        fail(f"variant ids repeat: {ids}")
    allowed = set(names) | set(COMMON_OPTIONS)
    for variant in spec.variants:
        if not NAME_PATTERN.match(variant.id.replace("-", "_")):
            fail(f"variant id {variant.id!r} must be lower-case words joined by '-' or '_'")
        unknown = set(variant.options) - allowed
        if unknown:
            fail(f"variant {variant.id!r} sets unknown options {sorted(unknown)}")
    for problem, options in spec.converges.items():
        unknown = set(options) - allowed
        if unknown:
            fail(f"converges[{problem!r}] sets unknown options {sorted(unknown)}")
    if "lr" not in spec.search_space:
        fail("search_space must declare lr")
    for option, dimension in spec.search_space.items():
        element = ELEMENT_KEY.match(option)
        name = element["name"] if element else option
        if name not in names:
            fail(f"search_space names no hyperparameter: {option!r}")
        if element:
            hyperparameter = spec.hyperparameters[names.index(name)]
            if not isinstance(hyperparameter, Reals):
                fail(f"search_space[{option!r}]: {name} is not a tuple of numbers")
            elif int(element["index"]) >= len(hyperparameter.default):
                fail(f"search_space[{option!r}]: {name} has {len(hyperparameter.default)} elements")
        if not isinstance(dimension, DIMENSIONS):
            fail(
                f"search_space[{option!r}] must be a LogUniform, OneMinusLogUniform, Uniform "
                "or Choice"
            )
        elif isinstance(dimension, Choice):
            if not dimension.values:
                fail(f"search_space[{option!r}] is a Choice of nothing")
        elif not (
            validation.is_real(dimension.low)
            and validation.is_real(dimension.high)
            and math.isfinite(dimension.low)
            and math.isfinite(dimension.high)
            and dimension.low < dimension.high
            and (dimension.low > 0 or isinstance(dimension, Uniform))
        ):
            fail(
                f"search_space[{option!r}]: needs finite low < high"
                + ("" if isinstance(dimension, Uniform) else ", low > 0")
            )
    for error_input in spec.error_inputs:
        if not (isinstance(error_input.error, type) and issubclass(error_input.error, Exception)):
            fail("every error input's error must be an exception class")


def conforming_shape(shape, ndims):
    """``shape`` with its number of dimensions brought into ``ndims`` (None: any) and its size
    kept where it can be: leading dimensions merged, or dimensions of 1 put in front (an
    empty shape stays empty). The conformance checks make their arrays so for a spec that
    takes some numbers of dimensions only."""
    shape = tuple(shape)
    if ndims is None or len(shape) in ndims:
        return shape
    target = min(ndims, key=lambda n: (abs(n - len(shape)), n))
    if target == 0:
        return ()
    if len(shape) > target:
        merged = 1
        for size in shape[: len(shape) - target + 1]:
            merged *= size
        return (merged, *shape[len(shape) - target + 1 :])
    return (1,) * (target - len(shape)) + shape
