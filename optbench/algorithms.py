"""The built-in optimizers, one :class:`~optbench.spec.OptimizerSpec` each.

Names, options, defaults and formulas are those of ``torch.optim`` (torch 2.13), or of the
paper or the authors' implementation where torch has no such optimizer (Lion, AdaBound,
ADOPT, AdEMAMix, Adan; the last three match the authors' code to 1e-11 relative in float64
over 100 steps of every variant). Each spec names its chunk kernel
(``optbench.kernels.optimizers``), its NumPy oracle (``optbench.reference.optimizers``) and its
in-place NumPy peer (``optbench.reference.inplace``).

``converges`` holds one reasonable setting per built-in problem, chosen from a log grid of
learning rates (1e-4 ... 1) inside the range that converges, not at its edge; defaults
otherwise, except SGD's momentum on Rosenbrock (plain gradient descent needs ~3e4 steps down the
valley), AdaBound's ``final_lr`` there (its SGD phase at the default 0.1 diverges on
curvature ~1000), Schedule-Free SGD there, which reaches the optimum within 1e4 steps only
for lr in 5e-3 ... 7e-3 (8e-3 diverges), and LAMB there, whose step is about lr ||p|| long
whatever the gradient: it ends about 3 lr from the optimum, within the tolerance for lr in
3e-3 ... 5e-3 (2e-3 stalls on the valley's floor), and Adafactor there, whose step is about
min(lr, t^-1/2) rms(p) long: within the tolerance for lr in 4e-3 ... 8e-3.
"""

import dataclasses
import math

from .kernels import adafactor, matrices
from .kernels import optimizers as kernels
from .reference import inplace
from .reference import optimizers as reference
from .spec import (
    Constant,
    ErrorInput,
    Flag,
    GroupScalar,
    Integer,
    LogUniform,
    OneMinusLogUniform,
    OneOf,
    OptimizerSpec,
    Pass,
    Real,
    Reals,
    State,
    Uniform,
    Variant,
)

MAXIMIZE = Flag("maximize", False, kernel=False, keyword_only=True, doc="ascend instead")
BETAS = Reals("betas", (0.9, 0.999), names=("beta1", "beta2"), doc="moment decay rates")
LR_SPACE = LogUniform(1e-5, 1.0)
ADAPTIVE_SPACE = {
    "lr": LogUniform(1e-5, 1e-1),
    "betas[0]": OneMinusLogUniform(1e-3, 0.5),
    "weight_decay": LogUniform(1e-6, 1e-1),
}
BETA_ERRORS = (
    ErrorInput({"betas": (1.0, 0.9)}, ValueError, r"betas\[0\]"),
    ErrorInput({"betas": (0.9, -0.1)}, ValueError, r"betas\[1\]"),
    ErrorInput({"betas": (0.9,)}, TypeError, "betas"),
    ErrorInput({"betas": 0.9}, TypeError, "betas"),
)
LR_ERRORS = (
    ErrorInput({"lr": -1.0}, ValueError, "lr must be a finite number >= 0"),
    ErrorInput({"lr": float("nan")}, ValueError, "lr"),
    ErrorInput({"lr": "0.1"}, TypeError, "lr must be a real number"),
)


def _factored(shape, which):
    """Adafactor's row (``which=0``) or column moment shape of an array of ``shape``; None
    below 2 dimensions."""
    return reference.adafactor_shapes(shape)[which] if len(shape) >= 2 else None


def _sgd_check(options):
    if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
        raise ValueError("nesterov=True needs momentum > 0 and dampening = 0")


SGD = OptimizerSpec(
    name="sgd",
    class_name="SGD",
    summary="Stochastic gradient descent with momentum, as ``torch.optim.SGD``.",
    doc=r"""
    .. math::
        g_t &= \pm\nabla_t + \lambda p_{t-1} \\
        b_t &= \mu b_{t-1} + (1 - \tau) g_t \quad (b_1 = g_1) \\
        p_t &= p_{t-1} - \gamma\,(g_t + \mu b_t \text{ if nesterov else } b_t)

    Without momentum (``mu = 0``) the step is ``p -= lr * g``. ``dampening = momentum`` gives
    the exponential moving average ``b = rho b + (1 - rho) g`` of the lecture notes (from step
    2; torch starts the buffer at ``b_1 = g_1``).
    """,
    hyperparameters=(
        Real("lr", 1e-3, doc="learning rate"),
        Real("momentum", 0.0),
        Real("dampening", 0.0, high=1.0),
        Real("weight_decay", 0.0, doc="L2 penalty added to the gradient"),
        Flag("nesterov", False, doc="needs momentum > 0 and dampening = 0"),
        MAXIMIZE,
    ),
    state=(State("momentum_buffer", used_when="momentum"),),
    chunk=kernels.sgd_chunk,
    reference=reference.sgd,
    lr=1e-2,
    variants=(
        Variant("default", {}, "plain gradient descent"),
        Variant("momentum", {"momentum": 0.9}, "heavy ball"),
        Variant("dampening", {"momentum": 0.9, "dampening": 0.9}, "an average of gradients"),
        Variant("nesterov", {"momentum": 0.9, "nesterov": True}, "Nesterov momentum"),
        Variant(
            "everything",
            {"momentum": 0.5, "dampening": 0.3, "weight_decay": 0.1, "maximize": True},
            "every option at once",
        ),
        Variant("weight_decay", {"weight_decay": 0.1}, "L2 penalty without momentum"),
    ),
    error_inputs=(
        *LR_ERRORS,
        ErrorInput({"nesterov": True}, ValueError, "nesterov"),
        ErrorInput({"nesterov": True, "momentum": 0.9, "dampening": 0.1}, ValueError, "nesterov"),
        ErrorInput({"dampening": 1.5}, ValueError, "dampening"),
        ErrorInput({"momentum": -0.1}, ValueError, "momentum"),
    ),
    converges={
        "quadratic": {"lr": 0.1},
        "rosenbrock": {"lr": 1e-3, "momentum": 0.9},
    },
    # heavy-ball momentum from 0.5 to 0.99 (never 0, which Nesterov's variant refuses)
    search_space={"lr": LR_SPACE, "momentum": OneMinusLogUniform(0.01, 0.5)},
    torch_peer="SGD",
    inplace_peer=inplace.sgd,
    check=_sgd_check,
)

ADAGRAD = OptimizerSpec(
    name="adagrad",
    class_name="Adagrad",
    summary="Adagrad (Duchi et al. 2011), as ``torch.optim.Adagrad``.",
    doc=r"""
    .. math::
        \tilde\gamma_t = \gamma / (1 + (t - 1)\eta), \quad
        s_t = s_{t-1} + g_t^2, \quad
        p_t = p_{t-1} - \tilde\gamma_t\, g_t / (\sqrt{s_t} + \epsilon)

    with ``g_t`` the (sign-flipped if ``maximize``) gradient plus ``weight_decay * p``.
    """,
    hyperparameters=(
        Real("lr", 1e-2),
        Real("lr_decay", 0.0),
        Real("weight_decay", 0.0),
        Real("initial_accumulator_value", 0.0, kernel=False, doc="s_0"),
        Real("eps", 1e-10),
        MAXIMIZE,
    ),
    state=(State("sum", initial="initial_accumulator_value"),),
    chunk=kernels.adagrad_chunk,
    reference=reference.adagrad,
    lr=1e-2,
    variants=(
        Variant("default", {}),
        Variant("lr_decay", {"lr_decay": 0.05}, "a decaying learning rate"),
        Variant("accumulator", {"initial_accumulator_value": 0.5, "eps": 1e-3}, "s_0 > 0"),
        Variant(
            "everything",
            {"weight_decay": 0.1, "maximize": True, "lr_decay": 0.01},
            "decay, maximize and lr decay",
        ),
    ),
    error_inputs=(
        *LR_ERRORS,
        ErrorInput({"initial_accumulator_value": -1.0}, ValueError, "initial_accumulator_value"),
        ErrorInput({"lr_decay": -1.0}, ValueError, "lr_decay"),
    ),
    converges={"quadratic": {"lr": 0.3}, "rosenbrock": {"lr": 0.5}},
    search_space={"lr": LR_SPACE, "eps": LogUniform(1e-10, 1e-3)},
    torch_peer="Adagrad",
    inplace_peer=inplace.adagrad,
)

RMSPROP = OptimizerSpec(
    name="rmsprop",
    class_name="RMSprop",
    summary="RMSprop (Hinton 2012), optionally centered (Graves 2013), as ``torch.optim.RMSprop``.",
    doc=r"""
    .. math::
        v_t &= \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        \bar g_t &= \alpha \bar g_{t-1} + (1 - \alpha) g_t \quad \text{(centered)} \\
        d_t &= \sqrt{v_t - \bar g_t^2} + \epsilon \text{ (centered) or } \sqrt{v_t} + \epsilon \\
        b_t &= \mu b_{t-1} + g_t / d_t, \quad p_t = p_{t-1} - \gamma b_t \quad (\mu > 0) \\
        p_t &= p_{t-1} - \gamma g_t / d_t \quad (\mu = 0)
    """,
    hyperparameters=(
        Real("lr", 1e-2),
        Real("alpha", 0.99, high=1.0, doc="decay of the squared-gradient average"),
        Real("eps", 1e-8),
        Real("weight_decay", 0.0),
        Real("momentum", 0.0),
        Flag("centered", False),
        MAXIMIZE,
    ),
    state=(
        State("square_avg"),
        State("momentum_buffer", used_when="momentum"),
        State("grad_avg", used_when="centered"),
    ),
    chunk=kernels.rmsprop_chunk,
    reference=reference.rmsprop,
    lr=1e-3,
    variants=(
        Variant("default", {}),
        Variant("centered", {"centered": True}),
        Variant("momentum", {"momentum": 0.9}),
        Variant("centered_momentum", {"momentum": 0.9, "centered": True, "weight_decay": 0.1}),
        Variant("everything", {"alpha": 0.5, "eps": 1e-3, "maximize": True}),
    ),
    error_inputs=(*LR_ERRORS, ErrorInput({"alpha": 1.01}, ValueError, "alpha")),
    converges={"quadratic": {"lr": 1e-2}, "rosenbrock": {"lr": 1e-3}},
    search_space={"lr": LR_SPACE, "alpha": Uniform(0.9, 0.999), "momentum": Uniform(0.0, 0.99)},
    torch_peer="RMSprop",
    inplace_peer=inplace.rmsprop,
)

ADADELTA = OptimizerSpec(
    name="adadelta",
    class_name="Adadelta",
    summary="Adadelta (Zeiler 2012), as ``torch.optim.Adadelta``.",
    doc=r"""
    .. math::
        v_t &= \rho v_{t-1} + (1 - \rho) g_t^2 \\
        \Delta_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} g_t, \quad
        u_t = \rho u_{t-1} + (1 - \rho) \Delta_t^2 \\
        p_t &= p_{t-1} - \gamma \Delta_t

    The step's unit comes from the running average of past steps ``u``: ``lr = 1`` is the
    paper's method, a smaller ``lr`` scales it.
    """,
    hyperparameters=(
        Real("lr", 1.0),
        Real("rho", 0.9, high=1.0, doc="decay of both running averages"),
        Real("eps", 1e-6),
        Real("weight_decay", 0.0),
        MAXIMIZE,
    ),
    state=(State("square_avg"), State("acc_delta")),
    chunk=kernels.adadelta_chunk,
    reference=reference.adadelta,
    lr=0.1,
    variants=(
        Variant("default", {}),
        Variant("l2", {"weight_decay": 0.1}, "L2 penalty in the gradient"),
        Variant("everything", {"lr": 0.5, "rho": 0.5, "eps": 1e-3, "maximize": True}),
    ),
    error_inputs=(*LR_ERRORS, ErrorInput({"rho": 1.5}, ValueError, "rho")),
    converges={"quadratic": {"lr": 0.1}, "rosenbrock": {"lr": 0.03}},
    search_space={"lr": LogUniform(1e-3, 10.0), "rho": Uniform(0.5, 0.99)},
    torch_peer="Adadelta",
    inplace_peer=inplace.adadelta,
    inplace_scratch=2,
)


def _rprop_check(options):
    etaminus, etaplus = options["etas"]
    if not 0.0 < etaminus < 1.0 < etaplus:
        raise ValueError(f"etas must satisfy 0 < etaminus < 1 < etaplus, got {options['etas']}")
    low, high = options["step_sizes"]
    if not low <= high:
        raise ValueError(f"step_sizes must be (min, max) with min <= max, got {(low, high)}")


RPROP = OptimizerSpec(
    name="rprop",
    class_name="Rprop",
    summary="Rprop (Riedmiller and Braun 1993), as ``torch.optim.Rprop``.",
    doc=r"""
    .. math::
        s_t &= \mathrm{clip}\big(s_{t-1} \eta_\pm, s_{min}, s_{max}\big), \quad
        \eta_+ \text{ if } g_t g_{t-1} > 0, \ \eta_- \text{ if } g_t g_{t-1} < 0, \ 1
        \text{ otherwise} \quad (s_0 = \gamma) \\
        p_t &= p_{t-1} - \mathrm{sign}(g_t) s_t, \quad g_t := 0 \text{ where the sign flipped}

    Only the gradient's sign is used: meant for full-batch training.
    """,
    hyperparameters=(
        Real("lr", 1e-2, doc="the first step size"),
        Reals("etas", (0.5, 1.2), high=math.inf, names=("etaminus", "etaplus")),
        Reals(
            "step_sizes",
            (1e-6, 50.0),
            high=math.inf,
            high_open=False,
            names=("step_size_min", "step_size_max"),
        ),
        MAXIMIZE,
    ),
    state=(State("prev"), State("step_size")),
    chunk=kernels.rprop_chunk,
    reference=reference.rprop,
    lr=1e-2,
    variants=(
        Variant("default", {}),
        Variant("narrow", {"etas": (0.3, 1.5), "step_sizes": (1e-3, 0.05)}, "tight bounds"),
        Variant("everything", {"lr": 0.1, "etas": (0.9, 1.1), "maximize": True}),
    ),
    error_inputs=(
        *LR_ERRORS,
        ErrorInput({"etas": (1.2, 0.5)}, ValueError, "etas"),
        ErrorInput({"step_sizes": (1.0, 0.1)}, ValueError, "step_sizes"),
    ),
    converges={"quadratic": {"lr": 1e-2}, "rosenbrock": {"lr": 1e-2}},
    search_space={"lr": LogUniform(1e-4, 1e-1)},
    torch_peer="Rprop",
    inplace_peer=inplace.rprop,
    inplace_scratch=2,
    check=_rprop_check,
)


def _asgd_schedule(options, step, scalars):
    """torch's ASGD: returns this step's ``eta`` and ``mu`` (``lr`` and 1 on the first step)
    and keeps the next step's, ``eta = lr / (1 + lambd lr t)^alpha`` and
    ``mu = 1 / max(1, t - t0)``."""
    lr = options["lr"]
    if step == 1:
        scalars["eta"], scalars["mu"] = float(lr), 1.0
    eta, mu = scalars["eta"], scalars["mu"]
    scalars["eta"] = lr / (1.0 + options["lambd"] * lr * step) ** options["alpha"]
    scalars["mu"] = 1.0 / max(1.0, step - options["t0"])
    return eta, mu


ASGD = OptimizerSpec(
    name="asgd",
    class_name="ASGD",
    summary="Averaged SGD (Polyak and Juditsky 1992), as ``torch.optim.ASGD``.",
    doc=r"""
    .. math::
        p_t &= p_{t-1} (1 - \lambda \eta_t) - \eta_t g_t, \quad
        \bar p_t = \bar p_{t-1} + \mu_t (p_t - \bar p_{t-1}) \\
        \eta_{t+1} &= \gamma / (1 + \lambda \gamma t)^\alpha, \quad
        \mu_{t+1} = 1 / \max(1, t - t_0) \quad (\eta_1 = \gamma, \ \mu_1 = 1)

    The average :math:`\bar p` is the state buffer ``ax`` (torch's name), read through
    ``state_dict()``; it copies the parameters until step :math:`t_0 + 1`. ``eta`` and ``mu``
    are kept per group in float64 and listed per array in ``state_dict``, as torch does.
    """,
    hyperparameters=(
        Real("lr", 1e-2, kernel=False, doc="the first step size"),
        Real("lambd", 1e-4, doc="decay of the step size and of the parameters"),
        Real("alpha", 0.75, kernel=False, doc="power of the step size's decay"),
        Real("t0", 1e6, kernel=False, doc="the step after which averaging starts"),
        Real("weight_decay", 0.0, doc="L2 penalty added to the gradient"),
        MAXIMIZE,
    ),
    state=(State("ax"),),
    chunk=kernels.asgd_chunk,
    reference=reference.asgd,
    lr=1e-2,
    variants=(
        Variant("default", {}),
        Variant("averaging", {"t0": 3.0}, "the average starts at step 4"),
        Variant(
            "everything",
            {
                "lr": 0.05,
                "lambd": 0.01,
                "alpha": 0.5,
                "t0": 2.0,
                "weight_decay": 0.1,
                "maximize": True,
            },
        ),
    ),
    error_inputs=(
        *LR_ERRORS,
        ErrorInput({"lambd": -1e-4}, ValueError, "lambd"),
        ErrorInput({"t0": float("inf")}, ValueError, "t0"),
        ErrorInput({"weight_decay": -0.1}, ValueError, "weight_decay"),
    ),
    converges={"quadratic": {"lr": 0.1}, "rosenbrock": {"lr": 1.5e-3}},
    search_space={"lr": LR_SPACE},
    torch_peer="ASGD",
    inplace_peer=inplace.asgd,
    derived=("eta", "mu"),
    group_scalars=(
        GroupScalar("eta", 0.0, low=0.0),
        GroupScalar("mu", 1.0, low=0.0, high=1.0),
    ),
    prepare_step=_asgd_schedule,
)

ADAM = OptimizerSpec(
    name="adam",
    class_name="Adam",
    summary="Adam (Kingma & Ba 2015) and AMSGrad (Reddi et al. 2018), as ``torch.optim.Adam``.",
    doc=r"""
    .. math::
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2
            \quad (\text{amsgrad: } v_t \leftarrow \max(v^{\max}_{t-1}, v_t)) \\
        p_t &= p_{t-1} - \frac{\gamma}{1 - \beta_1^t}\,
            \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    ``weight_decay`` adds ``lambda p`` to the gradient, or with ``decoupled_weight_decay``
    multiplies ``p`` by ``1 - gamma lambda`` before the update (AdamW).
    """,
    hyperparameters=(
        Real("lr", 1e-3),
        BETAS,
        Real("eps", 1e-8),
        Real("weight_decay", 0.0),
        Flag("amsgrad", False),
        MAXIMIZE,
        Flag("decoupled_weight_decay", False, keyword_only=True, doc="AdamW's decay"),
    ),
    state=(
        State("exp_avg"),
        State("exp_avg_sq"),
        State("max_exp_avg_sq", used_when="amsgrad"),
    ),
    chunk=kernels.adam_chunk,
    reference=reference.adam,
    lr=1e-3,
    variants=(
        Variant("default", {}),
        Variant("amsgrad", {"amsgrad": True}),
        Variant("l2", {"weight_decay": 0.1}, "L2 penalty in the gradient"),
        Variant("decoupled", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
        Variant(
            "everything", {"betas": (0.5, 0.9), "eps": 1e-3, "maximize": True, "amsgrad": True}
        ),
    ),
    error_inputs=(*LR_ERRORS, *BETA_ERRORS, ErrorInput({"eps": -1e-8}, ValueError, "eps")),
    converges={"quadratic": {"lr": 3e-2}, "rosenbrock": {"lr": 2e-2}},
    search_space=ADAPTIVE_SPACE,
    torch_peer="Adam",
    inplace_peer=inplace.adam,
)

ADAMW = dataclasses.replace(
    ADAM,
    name="adamw",
    class_name="AdamW",
    summary="AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay, as torch's AdamW.",
    doc="""
    Each step first shrinks the parameters, ``p <- p (1 - gamma lambda)``, then applies the
    Adam update without any L2 term in the gradient.
    """,
    hyperparameters=(
        Real("lr", 1e-3),
        BETAS,
        Real("eps", 1e-8),
        Real("weight_decay", 1e-2),
        Flag("amsgrad", False),
        MAXIMIZE,
        Constant("decoupled_weight_decay", True, doc="AdamW always decouples weight decay"),
    ),
    variants=(
        Variant("default", {}),
        Variant("amsgrad", {"amsgrad": True}),
        Variant("maximize", {"weight_decay": 0.5, "maximize": True}),
        Variant("no_decay", {"weight_decay": 0.0}),
    ),
    converges={"quadratic": {"lr": 3e-2}, "rosenbrock": {"lr": 1e-2}},
    torch_peer="AdamW",
)

ADOPT = OptimizerSpec(
    name="adopt",
    class_name="ADOPT",
    summary="ADOPT (Taniguchi et al. 2024), as the authors' implementation with its clipping.",
    doc=r"""
    .. math::
        v_1 &= g_1^2 \quad \text{(the first step changes nothing else)} \\
        n_t &= \mathrm{clip}\big(g_t / \max(\sqrt{v_{t-1}}, \epsilon), \ (t - 1)^{1/4}\big),
        \quad m_t = \beta_1 m_{t-1} + (1 - \beta_1) n_t \\
        p_t &= p_{t-1} - \gamma m_t, \quad v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2

    The gradient is normalized by the second moment of the earlier gradients only, which
    makes Adam converge for any :math:`\beta_2`; the clip bounds the first steps, where
    :math:`v` rests on few gradients. ``decoupled_weight_decay`` multiplies the parameters by
    :math:`1 - \gamma\lambda` from step 2; otherwise :math:`\lambda p` joins the gradient.
    """,
    hyperparameters=(
        Real("lr", 1e-3),
        dataclasses.replace(BETAS, default=(0.9, 0.9999)),
        Real("eps", 1e-6),
        Real("weight_decay", 0.0),
        Flag("decoupled_weight_decay", False, doc="AdamW-style decay"),
        MAXIMIZE,
    ),
    state=(State("exp_avg"), State("exp_avg_sq")),
    chunk=kernels.adopt_chunk,
    reference=reference.adopt,
    lr=1e-3,
    variants=(
        Variant("default", {}),
        Variant("l2", {"weight_decay": 0.1}),
        Variant("decoupled", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
        Variant(
            "everything",
            {"betas": (0.3, 0.9), "eps": 1e-3, "maximize": True},
            "a small beta1: torch's other lerp formula",
        ),
    ),
    error_inputs=(*LR_ERRORS, *BETA_ERRORS, ErrorInput({"eps": -1e-6}, ValueError, "eps")),
    converges={"quadratic": {"lr": 1e-2}, "rosenbrock": {"lr": 0.3}},
    search_space=ADAPTIVE_SPACE,
    inplace_peer=inplace.adopt,
)


ADEMAMIX = OptimizerSpec(
    name="ademamix",
    class_name="AdEMAMix",
    summary="AdEMAMix (Pagliardini et al. 2024), as the authors' implementation.",
    doc=r"""
    .. math::
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
        s_t = \beta_3 s_{t-1} + (1 - \beta_3) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        p_t &= p_{t-1} - \gamma \Big(\frac{m_t / (1 - \beta_1^t) + \alpha s_t}
              {\sqrt{v_t / (1 - \beta_2^t)} + \epsilon} + \lambda p_{t-1}\Big)

    Adam's fast average :math:`m` plus a slow one :math:`s` (``exp_avg_slow``, half-life
    :math:`\ln 2 / (1 - \beta_3)` steps, about 6900 at the default) that keeps old gradients
    relevant. ``alpha_warmup`` raises :math:`\alpha` linearly from 0; ``beta3_warmup`` raises
    :math:`\beta_3` from :math:`\beta_1` so that its half-life grows linearly; ``None``
    (or 0) is no warm-up. The weight decay is decoupled, not scaled by the average's size.
    """,
    hyperparameters=(
        Real("lr", 1e-3),
        Reals(
            "betas",
            (0.9, 0.999, 0.9999),
            high=1.0,
            high_open=True,
            names=("beta1", "beta2", "beta3"),
            doc="fast, second-moment and slow decay rates",
        ),
        Real("alpha", 2.0, doc="weight of the slow average"),
        Real("beta3_warmup", None, none_means=0.0, doc="steps of beta3's warm-up"),
        Real("alpha_warmup", None, none_means=0.0, doc="steps of alpha's warm-up"),
        Real("eps", 1e-8),
        Real("weight_decay", 0.0, doc="decoupled: lr * weight_decay * p each step"),
        MAXIMIZE,
    ),
    state=(State("exp_avg_fast"), State("exp_avg_slow"), State("exp_avg_sq")),
    chunk=kernels.ademamix_chunk,
    reference=reference.ademamix,
    lr=1e-3,
    variants=(
        Variant("default", {}),
        Variant("warmup", {"beta3_warmup": 20, "alpha_warmup": 30}, "both warm-ups"),
        Variant("no_fast", {"betas": (0.0, 0.99, 0.999), "beta3_warmup": 10}, "beta1 = 0"),
        Variant(
            "everything",
            {
                "lr": 1e-2,
                "betas": (0.5, 0.9, 0.99),
                "alpha": 5.0,
                "beta3_warmup": 7.5,
                "alpha_warmup": 12,
                "eps": 1e-3,
                "weight_decay": 0.1,
                "maximize": True,
            },
        ),
    ),
    error_inputs=(
        *LR_ERRORS,
        ErrorInput({"betas": (0.9, 0.999, 1.0)}, ValueError, r"betas\[2\]"),
        ErrorInput({"betas": (0.9, 0.999)}, TypeError, "betas"),
        ErrorInput({"alpha": -1.0}, ValueError, "alpha"),
        ErrorInput({"alpha_warmup": "10"}, TypeError, "alpha_warmup"),
        ErrorInput({"beta3_warmup": -5}, ValueError, "beta3_warmup"),
    ),
    converges={"quadratic": {"lr": 3e-2}, "rosenbrock": {"lr": 0.1}},
    search_space={
        "lr": LogUniform(1e-5, 1e-1),
        "alpha": Uniform(1.0, 10.0),
        "weight_decay": LogUniform(1e-6, 1e-1),
    },
    inplace_peer=inplace.ademamix,
    inplace_scratch=3,
)

ADAN = OptimizerSpec(
    name="adan",
    class_name="Adan",
    summary="Adan (Xie et al. 2022): adaptive Nesterov momentum, as the authors' implementation.",
    doc=r"""
    .. math::
        d_t &= g_t - g_{t-1} \quad (d_1 = 0), \quad
        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
        \delta_t = \beta_2 \delta_{t-1} + (1 - \beta_2) d_t \\
        n_t &= \beta_3 n_{t-1} + (1 - \beta_3) (g_t + \beta_2 d_t)^2, \quad
        D_t = \sqrt{n_t / (1 - \beta_3^t)} + \epsilon \\
        p_t &= \Big(p_{t-1} - \frac{\gamma}{1 - \beta_1^t} \frac{m_t}{D_t}
              - \frac{\gamma \beta_2}{1 - \beta_2^t} \frac{\delta_t}{D_t}\Big)
              \Big/ (1 + \gamma \lambda)

    The betas weigh the old average, as torch's do (the paper writes :math:`1 - \beta`).
    ``no_prox`` multiplies by :math:`1 - \gamma\lambda` before the step instead of the
    proximal division after it. The previous gradient is kept negated, as ``neg_pre_grad``;
    the authors' ``max_grad_norm`` is optbench's ``clip_norm``.
    """,
    hyperparameters=(
        Real("lr", 1e-3),
        Reals(
            "betas",
            (0.98, 0.92, 0.99),
            high=1.0,
            high_open=True,
            names=("beta1", "beta2", "beta3"),
            doc="decay rates of the gradient, difference and squared averages",
        ),
        Real("eps", 1e-8),
        Real("weight_decay", 0.0, doc="decoupled, proximal unless no_prox"),
        Flag("no_prox", False, doc="decay before the step, as AdamW"),
        MAXIMIZE,
    ),
    state=(
        State("exp_avg"),
        State("exp_avg_sq"),
        State("exp_avg_diff"),
        State("neg_pre_grad"),
    ),
    chunk=kernels.adan_chunk,
    reference=reference.adan,
    lr=1e-3,
    variants=(
        Variant("default", {}),
        Variant("decay", {"weight_decay": 0.1}, "proximal decay"),
        Variant("no_prox", {"weight_decay": 0.1, "no_prox": True}, "decay before the step"),
        Variant(
            "everything",
            {
                "lr": 1e-2,
                "betas": (0.5, 0.6, 0.7),
                "eps": 1e-3,
                "weight_decay": 0.02,
                "maximize": True,
            },
        ),
    ),
    error_inputs=(
        *LR_ERRORS,
        ErrorInput({"betas": (0.98, 1.0, 0.99)}, ValueError, r"betas\[1\]"),
        ErrorInput({"betas": (0.98, 0.92)}, TypeError, "betas"),
        ErrorInput({"weight_decay": -0.1}, ValueError, "weight_decay"),
    ),
    converges={"quadratic": {"lr": 1e-2}, "rosenbrock": {"lr": 1e-2}},
    search_space={"lr": LogUniform(1e-5, 1e-1), "weight_decay": LogUniform(1e-6, 1e-1)},
    inplace_peer=inplace.adan,
    inplace_scratch=3,
)


def _schedule_free_mover(momentum_of, to_eval):
    """to_eval: ``x = lerp(y, z, 1 - 1 / beta)``; to_train: ``y = lerp(x, z, 1 - beta)``, in
    place, as the authors' ``eval()`` and ``train()``."""

    def move(param, state, options):
        beta = momentum_of(options)
        weight = 1.0 - 1.0 / beta if to_eval else 1.0 - beta
        param[...] = reference.lerp(param, state["z"], weight)

    return move


SCHEDULE_FREE_OPTIONS = (
    Real("warmup_steps", 0.0, kernel=False, doc="steps of the linear warm-up of lr"),
    Real("r", 0.0, kernel=False, doc="power of t in the averaging weights"),
    Real("weight_lr_power", 2.0, kernel=False, doc="power of the largest lr in the weights"),
    MAXIMIZE,
)
SCHEDULE_FREE_SCALARS = (
    GroupScalar("lr_max", -1.0, low=-1.0),
    GroupScalar("weight_sum", 0.0),
)
SCHEDULE_FREE_DOC = """
    The parameters hold :math:`y`, where gradients are taken; ``optimizer.eval()`` puts the
    average :math:`x = (y - (1 - \\beta) z) / \\beta` in them (for evaluation, checkpoints and
    reports) and ``optimizer.train()`` puts :math:`y` back; ``step`` refuses to run in eval
    mode. ``c_t = w_t / \\sum_{i \\le t} w_i`` with ``w_t = t^r \\max_{i \\le t} \\gamma_i^{p}``
    (``p = weight_lr_power``) and :math:`\\gamma_t` the rate after the linear warm-up over
    ``warmup_steps``. No learning-rate schedule is needed: that is the method's point.
    The optimizer starts in train mode (the authors' starts in eval mode, where a first
    ``train()`` changes nothing).
"""

SCHEDULE_FREE_SGD = OptimizerSpec(
    name="schedule_free_sgd",
    class_name="ScheduleFreeSGD",
    summary="Schedule-Free SGD (Defazio et al. 2024), as the authors' ``SGDScheduleFree``.",
    doc=r"""
    .. math::
        y_t &= (1 - c_t) y_{t-1} + c_t z_{t-1} + \gamma_t (\beta (1 - c_t) - 1) g_t, \quad
        z_t = z_{t-1} - \gamma_t g_t \quad (z_0 = y_0) \\
        x_t &= (y_t - (1 - \beta) z_t) / \beta

    :math:`g_t` is taken at :math:`y_{t-1}` and includes ``weight_decay * y``.
    """
    + SCHEDULE_FREE_DOC,
    hyperparameters=(
        Real("lr", 1.0, kernel=False),
        Real("momentum", 0.9, low_open=True, high=1.0, high_open=True, doc="beta"),
        Real("weight_decay", 0.0, doc="L2 penalty added to the gradient at y"),
        *SCHEDULE_FREE_OPTIONS,
    ),
    state=(State("z"),),
    chunk=kernels.schedule_free_sgd_chunk,
    reference=reference.schedule_free_sgd,
    lr=0.1,
    variants=(
        Variant("default", {}),
        Variant("warmup", {"warmup_steps": 10, "r": 1.0}, "warm-up and t-weighted average"),
        Variant(
            "everything",
            {
                "lr": 0.05,
                "momentum": 0.3,
                "weight_decay": 0.1,
                "warmup_steps": 5,
                "r": 0.5,
                "weight_lr_power": 1.0,
                "maximize": True,
            },
            "a small momentum: torch's other lerp formula",
        ),
    ),
    error_inputs=(
        *LR_ERRORS,
        ErrorInput({"momentum": 0.0}, ValueError, "momentum"),
        ErrorInput({"momentum": 1.0}, ValueError, "momentum"),
        ErrorInput({"warmup_steps": -1}, ValueError, "warmup_steps"),
        ErrorInput({"weight_decay": -0.1}, ValueError, "weight_decay"),
    ),
    converges={"quadratic": {"lr": 0.1}, "rosenbrock": {"lr": 6e-3}},
    search_space={"lr": LogUniform(1e-4, 10.0), "momentum": Uniform(0.5, 0.99)},
    inplace_peer=inplace.schedule_free_sgd,
    derived=("lr_t", "c_t"),
    group_scalars=SCHEDULE_FREE_SCALARS,
    prepare_step=reference.schedule_free_step,
    to_eval=_schedule_free_mover(lambda options: options["momentum"], to_eval=True),
    to_train=_schedule_free_mover(lambda options: options["momentum"], to_eval=False),
)


def _schedule_free_adamw_check(options):
    if options["betas"][0] == 0:
        raise ValueError("betas[0] must be > 0: eval() divides by it")


SCHEDULE_FREE_ADAMW = OptimizerSpec(
    name="schedule_free_adamw",
    class_name="ScheduleFreeAdamW",
    summary="Schedule-Free AdamW (Defazio et al. 2024), as the authors' ``AdamWScheduleFree``.",
    doc=r"""
    .. math::
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
        n_t = g_t / (\sqrt{v_t / (1 - \beta_2^t)} + \epsilon) + \lambda y_{t-1} \\
        y_t &= (1 - c_t) y_{t-1} + c_t z_{t-1} + \gamma_t (\beta_1 (1 - c_t) - 1) n_t, \quad
        z_t = z_{t-1} - \gamma_t n_t \quad (z_0 = y_0)

    The weight decay is decoupled and taken at :math:`y`.
    """
    + SCHEDULE_FREE_DOC,
    hyperparameters=(
        Real("lr", 0.0025, kernel=False),
        BETAS,
        Real("eps", 1e-8),
        Real("weight_decay", 0.0, doc="decoupled, at y"),
        *SCHEDULE_FREE_OPTIONS,
    ),
    state=(State("z"), State("exp_avg_sq")),
    chunk=kernels.schedule_free_adamw_chunk,
    reference=reference.schedule_free_adamw,
    lr=0.0025,
    variants=(
        Variant("default", {}),
        Variant("warmup", {"warmup_steps": 10, "r": 1.0}, "warm-up and t-weighted average"),
        Variant("decay", {"weight_decay": 0.1}),
        Variant(
            "everything",
            {
                "lr": 0.01,
                "betas": (0.3, 0.9),
                "eps": 1e-3,
                "weight_decay": 0.05,
                "warmup_steps": 5,
                "r": 1.0,
                "weight_lr_power": 1.0,
                "maximize": True,
            },
            "a small beta1: torch's other lerp formula",
        ),
    ),
    error_inputs=(
        *LR_ERRORS,
        *BETA_ERRORS,
        ErrorInput({"warmup_steps": -1}, ValueError, "warmup_steps"),
        ErrorInput({"betas": (0.0, 0.999)}, ValueError, r"betas\[0\] must be > 0"),
    ),
    converges={"quadratic": {"lr": 1e-2}, "rosenbrock": {"lr": 3e-2}},
    search_space=ADAPTIVE_SPACE,
    inplace_peer=inplace.schedule_free_adamw,
    inplace_scratch=2,
    derived=("lr_t", "c_t"),
    group_scalars=SCHEDULE_FREE_SCALARS,
    prepare_step=reference.schedule_free_step,
    to_eval=_schedule_free_mover(lambda options: options["betas"][0], to_eval=True),
    to_train=_schedule_free_mover(lambda options: options["betas"][0], to_eval=False),
    check=_schedule_free_adamw_check,
)

LAMB = OptimizerSpec(
    name="lamb",
    class_name="LAMB",
    summary="LAMB (You et al. 2019): Adam with a per-array trust ratio.",
    doc=r"""
    .. math::
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        r_t &= \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}
              + \lambda p_{t-1}, \quad
        p_t = p_{t-1} - \gamma \frac{\lVert p_{t-1} \rVert}{\lVert r_t \rVert} r_t

    The norms are those of each whole array, summed in float64 by chunk and added in chunk
    order (the same bits for any thread count); the ratio is 1 where either norm is 0.
    ``exclude_1d`` gives 0-D and 1-D arrays (biases, norm gains) neither decay nor ratio, as
    users exclude them; ``bias_correction=False`` is the first version of the paper.
    """,
    hyperparameters=(
        Real("lr", 1e-3),
        BETAS,
        Real("eps", 1e-6),
        Real("weight_decay", 0.0, doc="decoupled, inside the trust-ratio update"),
        Flag("bias_correction", True, doc="Adam's bias corrections of m and v"),
        Flag("exclude_1d", False, doc="no decay nor trust ratio for 0-D and 1-D arrays"),
        MAXIMIZE,
    ),
    state=(State("exp_avg"), State("exp_avg_sq")),
    chunk=kernels.lamb_chunk,
    reduce=kernels.lamb_reduce,
    reductions=("param_sq", "update_sq"),
    # reduce: read p, g, m, v, write m, v; update: read p, m, v, write p
    traffic=lambda options: (Pass(reads=2, updates=2), Pass(reads=2, updates=1)),
    reference=reference.lamb,
    lr=1e-3,
    variants=(
        Variant("default", {}),
        Variant("decay", {"weight_decay": 0.1}),
        Variant("exclude_1d", {"weight_decay": 0.1, "exclude_1d": True}),
        Variant(
            "everything",
            {
                "lr": 1e-2,
                "betas": (0.5, 0.9),
                "eps": 1e-3,
                "weight_decay": 0.05,
                "bias_correction": False,
                "maximize": True,
            },
        ),
    ),
    error_inputs=(*LR_ERRORS, *BETA_ERRORS, ErrorInput({"eps": -1.0}, ValueError, "eps")),
    converges={"quadratic": {"lr": 1e-2}, "rosenbrock": {"lr": 3e-3}},
    search_space=ADAPTIVE_SPACE,
    inplace_peer=inplace.lamb,
    inplace_scratch=2,
)

LARS = OptimizerSpec(
    name="lars",
    class_name="LARS",
    summary="LARS (You et al. 2017): SGD with a per-array trust ratio.",
    doc=r"""
    .. math::
        \rho_t &= \eta \frac{\lVert p_{t-1} \rVert}
                 {\lVert g_t \rVert + \lambda \lVert p_{t-1} \rVert + \epsilon}, \quad
        d_t = \rho_t (g_t + \lambda p_{t-1}) \\
        b_t &= \mu b_{t-1} + (1 - \tau) d_t \quad (b_1 = d_1), \quad
        p_t = p_{t-1} - \gamma\,(d_t + \mu b_t \text{ if nesterov else } b_t)

    :math:`\eta` is ``trust_coefficient``; the ratio is 1 where either norm is 0. The norms
    are those of each whole array, summed in float64 by chunk and added in chunk order (the
    same bits for any thread count). The ratio always applies (timm's ``always_adapt``);
    ``exclude_1d`` gives 0-D and 1-D arrays (biases, norm gains) neither decay nor ratio.
    """,
    hyperparameters=(
        Real("lr", 1.0),
        Real("momentum", 0.0),
        Real("dampening", 0.0, high=1.0),
        Real("weight_decay", 0.0, doc="L2 penalty, inside the trust ratio"),
        Flag("nesterov", False, doc="needs momentum > 0 and dampening = 0"),
        Real("trust_coefficient", 1e-3, doc="eta: the step is about lr eta ||p|| long"),
        Real("eps", 1e-8),
        Flag("exclude_1d", False, doc="no decay nor trust ratio for 0-D and 1-D arrays"),
        MAXIMIZE,
    ),
    state=(State("momentum_buffer", used_when="momentum"),),
    chunk=kernels.lars_chunk,
    reduce=kernels.lars_reduce,
    reductions=("param_sq", "grad_sq"),
    # reduce: read p, g; update: read g, read and write p and the buffer in use
    traffic=lambda options: (
        Pass(reads=2),
        Pass(reads=1, updates=2 if options["momentum"] else 1),
    ),
    reference=reference.lars,
    lr=1.0,
    variants=(
        Variant("default", {}),
        Variant("momentum", {"momentum": 0.9, "weight_decay": 0.1}),
        Variant("nesterov", {"momentum": 0.9, "nesterov": True}),
        Variant("exclude_1d", {"weight_decay": 0.1, "exclude_1d": True}),
        Variant(
            "everything",
            {
                "lr": 5.0,
                "momentum": 0.5,
                "dampening": 0.3,
                "weight_decay": 0.05,
                "trust_coefficient": 0.02,
                "eps": 1e-3,
                "maximize": True,
            },
        ),
    ),
    error_inputs=(
        *LR_ERRORS,
        ErrorInput({"nesterov": True}, ValueError, "nesterov"),
        ErrorInput({"trust_coefficient": -1e-3}, ValueError, "trust_coefficient"),
        ErrorInput({"dampening": 1.5}, ValueError, "dampening"),
    ),
    converges={"quadratic": {"lr": 1.0}, "rosenbrock": {"lr": 5.0}},
    search_space={"lr": LogUniform(1e-2, 1e2), "momentum": Uniform(0.0, 0.99)},
    inplace_peer=inplace.lars,
    check=_sgd_check,
)


def _prodigy_prepare(options, step, scalars):
    """The reduce pass's row: betas, beta3, the weights of g in m, v and s, the coupled
    decay, and whether the group is frozen (lr 0)."""
    d, k = scalars["d"], scalars["k"]
    _, s_coef = reference.prodigy_rates(options, d, k)
    beta1, beta2 = options["betas"]
    l2 = 0.0 if options["decouple"] else options["weight_decay"]
    beta3 = reference.prodigy_beta3(options)
    frozen = float(options["lr"] == 0)
    return beta1, beta2, beta3, d * (1.0 - beta1), d * d * (1.0 - beta2), s_coef, l2, frozen


def _prodigy_combine(sums, groups, scalars):
    """Between the passes: the new d from the sums of every group (``sums[g]``: g . (p0 - p)
    and |s|), as the authors' step; the update's row per group, or None where every |s| is
    0 (no update, d unchanged)."""
    first, shared = groups[0], scalars[0]
    d, k = shared["d"], shared["k"]
    rates = [reference.prodigy_rates(options, d, k)[0] for options in groups]
    numerator = shared["d_numerator"] * reference.prodigy_beta3(first)
    for options, dlr, (dot, _) in zip(groups, rates, sums.tolist(), strict=True):
        if options["lr"] != 0:
            numerator += (d / options["d0"]) * dlr * dot
    denominator = float(sums[:, 1].sum())
    if denominator == 0:
        return None
    d, d_max = reference.prodigy_estimate(d, shared["d_max"], first, numerator, denominator)
    for values in scalars:
        values.update(d=d, d_max=d_max, d_numerator=numerator, k=k + 1.0)
    return [
        (d * options["eps"], -dlr, -options["weight_decay"] * dlr if options["decouple"] else 0.0)
        for options, dlr in zip(groups, rates, strict=True)
    ]


PRODIGY = OptimizerSpec(
    name="prodigy",
    class_name="Prodigy",
    summary="Prodigy (Mishchenko and Defazio 2023), as the authors' prodigyopt.Prodigy.",
    doc=r"""
    .. math::
        m_t &= \beta_1 m_{t-1} + d_t (1 - \beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + d_t^2 (1 - \beta_2) g_t^2, \quad
        s_t = \beta_3 s_{t-1} + \tfrac{d_t}{d_0} \gamma_t g_t \\
        N_t &= \beta_3 N_{t-1} + \tfrac{d_t}{d_0} \gamma_t \langle g_t, p_0 - p_{t-1} \rangle,
        \quad d_{t+1} = \min(d^{\max}_{t+1}, \rho\, d_t), \quad
        d^{\max}_{t+1} = \max(d^{\max}_t, c N_t / \lVert s_t \rVert_1) \\
        p_t &= (1 - \lambda \gamma_t) p_{t-1} - \gamma_t m_t / (\sqrt{v_t} + d_{t+1} \epsilon)

    with :math:`\gamma_t = d_t \cdot \mathrm{lr}` (times Adam's bias correction with
    ``use_bias_correction``), :math:`c` = ``d_coef``, :math:`\rho` = ``growth_rate``, and
    while :math:`d_t = d_0` it jumps to :math:`c N_t / \lVert s_t \rVert_1`. The inner
    product and the norm run over every array of the optimizer: each array's partial sums are
    taken in float64 by chunk, added in chunk order, then over the arrays in order (the same
    bits for any thread count). Without ``decouple`` the decay is an L2 term in g; with
    ``safeguard_warmup`` s takes :math:`\tfrac{d_t}{d_0} d_t g_t`. ``d``, ``d_max``,
    ``d_numerator`` and the step count ``k`` are shared by the groups (the first group's
    ``d0``, ``d_coef`` and ``growth_rate`` move d); each group steps with its own lr, and a
    group with lr 0 is left as it is (the authors allow no other lr per group, and still
    decay a frozen group's weights). ``slice_p`` and FSDP are not implemented.
    """,
    hyperparameters=(
        Real("lr", 1.0, kernel=False, doc="scales the estimated step size d"),
        dataclasses.replace(BETAS, kernel=False),
        Real(
            "beta3",
            None,
            none_means=math.nan,
            high=1.0,
            high_open=True,
            kernel=False,
            doc="decay of s and of the estimate's numerator; None: sqrt(beta2)",
        ),
        Real("eps", 1e-8, low_open=True, kernel=False),
        Real("weight_decay", 0.0, kernel=False),
        Flag("decouple", True, kernel=False, doc="AdamW's decay (else an L2 term in g)"),
        Flag("use_bias_correction", False, kernel=False, doc="Adam's bias correction in d lr"),
        Flag(
            "safeguard_warmup", False, kernel=False, doc="s takes (d / d0) d g, not (d / d0) d lr g"
        ),
        Real("d0", 1e-6, low_open=True, kernel=False, doc="the initial estimate"),
        Real("d_coef", 1.0, low_open=True, kernel=False, doc="scales the estimate"),
        Real(
            "growth_rate",
            math.inf,
            low=1.0,
            infinite=True,
            kernel=False,
            doc="d grows at most by this factor a step",
        ),
        MAXIMIZE,
    ),
    state=(State("p0"), State("s"), State("exp_avg"), State("exp_avg_sq")),
    chunk=kernels.prodigy_chunk,
    reduce=kernels.prodigy_reduce,
    reductions=("dot", "abs_s"),
    derived=("beta1", "beta2", "beta3", "m_coef", "v_coef", "s_coef", "l2", "frozen"),
    group_scalars=(
        GroupScalar("d", initial="d0", low=0.0),
        GroupScalar("d_max", initial="d0", low=0.0),
        GroupScalar("d_numerator"),
        GroupScalar("k", low=0.0),
    ),
    prepare_step=_prodigy_prepare,
    combine=_prodigy_combine,
    combined=("d_eps", "step_size", "decay_step"),
    # reduce: read p, g, p0, s, m, v, write s, m, v; update: read p, m, v, write p
    traffic=lambda options: (Pass(reads=3, updates=3), Pass(reads=2, updates=1)),
    reference=reference.prodigy,
    lr=1.0,
    variants=(
        Variant("default", {}),
        Variant("decay", {"weight_decay": 0.1}),
        Variant("coupled_decay", {"weight_decay": 0.1, "decouple": False}),
        Variant("corrected", {"use_bias_correction": True, "safeguard_warmup": True}),
        Variant(
            "everything",
            {
                "lr": 0.5,
                "betas": (0.8, 0.9),
                "beta3": 0.95,
                "eps": 1e-6,
                "weight_decay": 0.05,
                "d0": 1e-3,
                "d_coef": 2.0,
                "growth_rate": 1.05,
                "maximize": True,
            },
        ),
    ),
    error_inputs=(
        *LR_ERRORS,
        *BETA_ERRORS,
        ErrorInput({"d0": 0.0}, ValueError, "d0"),
        ErrorInput({"eps": 0.0}, ValueError, "eps"),
        ErrorInput({"growth_rate": 0.5}, ValueError, "growth_rate"),
        ErrorInput({"beta3": 1.0}, ValueError, "beta3"),
    ),
    converges={"quadratic": {"lr": 1.0}, "rosenbrock": {"lr": 1.0}},
    search_space={"lr": LogUniform(0.1, 10.0), "d_coef": LogUniform(0.1, 10.0)},
)


ADAFACTOR = OptimizerSpec(
    name="adafactor",
    class_name="Adafactor",
    summary="Adafactor (Shazeer and Stern 2018), as torch.optim.Adafactor.",
    doc=r"""
    .. math::
        \hat\beta_t &= 1 - t^{c}, \quad
        R_t = \hat\beta_t R_{t-1} + (1 - \hat\beta_t)\,\mathrm{mean}_{-1}(g_t^2), \quad
        C_t = \hat\beta_t C_{t-1} + (1 - \hat\beta_t)\,\mathrm{mean}_{-2}(g_t^2) \\
        \hat v_t &= R_t C_t / \max(\mathrm{mean}(R_t), \epsilon_1), \quad
        u_t = g_t / \sqrt{\max(\hat v_t, \epsilon_1^2)} \\
        p_t &= (1 - \gamma \lambda) p_{t-1}
              - \frac{\max(\epsilon_2, \mathrm{rms}(p_{t-1})) \min(\gamma, t^{-1/2})}
                     {\max(1, \mathrm{rms}(u_t) / d)} u_t

    :math:`c` is ``beta2_decay``; ``lr`` bounds the relative step size. Arrays of 2 or more
    dimensions keep the factored moments R and C (row and column means over the last two
    dimensions: state ``row_var`` and ``col_var``, shaped as torch's); smaller ones keep
    ``variance``, :math:`v_t = \hat\beta_t v_{t-1} + (1 - \hat\beta_t) g_t^2`, in place of
    :math:`\hat v_t`. ``eps[0]=None`` is the dtype's machine epsilon. An empty array is left
    as it is. Unfused: its NumPy update runs array by array.
    """,
    hyperparameters=(
        Real("lr", 1e-2, doc="the largest relative step size"),
        Real("beta2_decay", -0.8, low=-math.inf, high=0.0, doc="c in beta_t = 1 - t^c"),
        Reals(
            "eps",
            (None, 1e-3),
            high=math.inf,
            high_open=False,
            nullable=(0,),
            names=("eps1", "eps2"),
            doc="eps1 floors the second moment, eps2 the parameters' rms",
        ),
        Real("d", 1.0, low=1.0, doc="the update's rms is clipped to d"),
        Real("weight_decay", 0.0, doc="decoupled, scaled by lr"),
        MAXIMIZE,
    ),
    state=(
        State("row_var", shape=lambda shape: _factored(shape, 0)),
        State("col_var", shape=lambda shape: _factored(shape, 1)),
        State("variance", shape=lambda shape: shape if len(shape) < 2 else None),
    ),
    chunk=None,
    reference=reference.adafactor,
    update=adafactor.adafactor_update,
    # minimal traffic of a 1-D array: read p, g, v and write v (the norms), then read p, g,
    # v and write p (the update needs rms(u) first)
    traffic=lambda options: (Pass(reads=2, updates=1), Pass(reads=2, updates=1)),
    lr=1e-2,
    variants=(
        Variant("default", {}),
        Variant("decay", {"weight_decay": 0.1}),
        Variant(
            "everything",
            {
                "lr": 0.05,
                "beta2_decay": -0.5,
                "eps": (1e-20, 1e-2),
                "d": 2.0,
                "weight_decay": 0.05,
                "maximize": True,
            },
        ),
    ),
    error_inputs=(
        *LR_ERRORS,
        ErrorInput({"beta2_decay": 0.5}, ValueError, "beta2_decay"),
        ErrorInput({"eps": (-1.0, 1e-3)}, ValueError, r"eps\[0\]"),
        ErrorInput({"eps": (None, None)}, TypeError, r"eps\[1\]"),
        ErrorInput({"eps": 1e-3}, TypeError, "eps"),
        ErrorInput({"d": 0.5}, ValueError, "d must"),
        ErrorInput({"weight_decay": -0.1}, ValueError, "weight_decay"),
    ),
    converges={"quadratic": {"lr": 1e-2}, "rosenbrock": {"lr": 5e-3}},
    search_space={"lr": LogUniform(1e-4, 1.0), "weight_decay": LogUniform(1e-6, 1e-1)},
    torch_peer="Adafactor",
    inplace_peer=inplace.adafactor,
    inplace_scratch=2,
)


MUON_OPTIONS = (
    Real("lr", 1e-3),
    Real("weight_decay", 0.1, doc="decoupled, scaled by lr"),
    Real("momentum", 0.95),
    Flag("nesterov", True),
    Reals(
        "ns_coefficients",
        (3.4445, -4.7750, 2.0315),
        low=-math.inf,
        high=math.inf,
        names=("a", "b", "c"),
        doc="X = a X + (b A + c A A) X with A = X X^T",
    ),
    Real("eps", 1e-7, doc="floor of the norm the update is divided by"),
    Integer("ns_steps", 5, high=99, doc="Newton-Schulz iterations"),
    OneOf(
        "adjust_lr_fn",
        None,
        choices=(None, "original", "match_rms_adamw"),
        doc="None or 'original': lr sqrt(max(1, A/B)); 'match_rms_adamw': 0.2 lr sqrt(max(A, B))",
    ),
)
MUON_DOC = r"""
    .. math::
        b_t &= \mu b_{t-1} + (1 - \mu) g_t, \quad
        u_t = \mu b_t + (1 - \mu) g_t \text{ (nesterov) or } b_t \\
        O_t &= \mathrm{NS}_k(u_t), \quad
        p_t = (1 - \gamma \lambda) p_{t-1} - \gamma' O_t

    :math:`\mathrm{NS}_k` is ``ns_steps`` quintic Newton-Schulz iterations from
    :math:`X = u / \max(\lVert u \rVert_F, \epsilon)`: :math:`A = X X^T`,
    :math:`X \leftarrow a X + (b A + c A^2) X`, on the wide orientation; they bring the
    singular values near 1. :math:`\gamma'` is ``lr`` adjusted to the matrix's shape
    (A, B) by ``adjust_lr_fn``. The matrix products are NumPy's (BLAS), in the parameter's
    dtype (torch runs them in bfloat16).
"""


def _muon_kept(shape):
    return shape if len(shape) == 2 else None


def _adamw_kept(shape):
    return shape if len(shape) != 2 else None


MUON_VARIANTS = (
    Variant("default", {}),
    Variant("plain", {"nesterov": False, "weight_decay": 0.0}, "heavy-ball momentum"),
    Variant("match_rms", {"adjust_lr_fn": "match_rms_adamw"}),
    Variant(
        "everything",
        {
            "lr": 0.02,
            "weight_decay": 0.05,
            "momentum": 0.8,
            "ns_coefficients": (2.0, -1.5, 0.5),
            "eps": 1e-3,
            "ns_steps": 3,
            "adjust_lr_fn": "original",
        },
        "a small momentum: torch's other lerp formula; cubic Newton-Schulz",
    ),
)
MUON_ERRORS = (
    *LR_ERRORS,
    ErrorInput({"momentum": -0.5}, ValueError, "momentum"),
    ErrorInput({"ns_steps": 100}, ValueError, "ns_steps"),
    ErrorInput({"ns_steps": 2.0}, TypeError, "ns_steps"),
    ErrorInput({"adjust_lr_fn": "rms"}, ValueError, "adjust_lr_fn"),
    ErrorInput({"ns_coefficients": (1.0, 2.0)}, TypeError, "ns_coefficients"),
)

MUON = OptimizerSpec(
    name="muon",
    class_name="Muon",
    summary="Muon (Jordan et al. 2024), as torch.optim.Muon: for 2-D arrays only.",
    doc=MUON_DOC
    + """
    Give the other arrays (biases, gains) to another optimizer: :class:`MuonWithAdamW` does
    it in one optimizer. Unfused: its NumPy update runs array by array.
    """,
    hyperparameters=(*MUON_OPTIONS, MAXIMIZE),
    state=(State("momentum_buffer"),),
    chunk=None,
    reference=reference.muon,
    update=matrices.muon_update,
    lr=2e-2,
    variants=(*MUON_VARIANTS[:-1], Variant("maximize", {"maximize": True}), MUON_VARIANTS[-1]),
    error_inputs=MUON_ERRORS,
    converges={
        "quadratic": {"lr": 3e-3, "weight_decay": 0.0},
        "rosenbrock": {"lr": 3e-3, "weight_decay": 0.0},
    },
    search_space={
        "lr": LogUniform(1e-4, 1.0),
        "momentum": Uniform(0.8, 0.99),
        "weight_decay": LogUniform(1e-4, 0.3),
    },
    torch_peer="Muon",
    ndims=(2,),
)

MUON_ADAMW = OptimizerSpec(
    name="muon_adamw",
    class_name="MuonWithAdamW",
    summary="Muon on the matrices, AdamW on the other arrays, with one lr (Liu et al. 2025).",
    doc=MUON_DOC
    + """
    Every array that is not a matrix (biases, gains, scalars) steps with AdamW
    (``adamw_betas``, ``adamw_eps``, the same ``lr`` and ``weight_decay``), as Muon's users
    give them; by default ``adjust_lr_fn="match_rms_adamw"`` scales Muon's step to AdamW's
    rms, so that one learning rate serves both. Unfused: its NumPy update runs array by
    array.
    """,
    hyperparameters=(
        *MUON_OPTIONS[:-1],
        dataclasses.replace(MUON_OPTIONS[-1], default="match_rms_adamw"),
        dataclasses.replace(BETAS, name="adamw_betas", names=(), doc="AdamW's betas"),
        Real("adamw_eps", 1e-8, doc="AdamW's eps"),
        MAXIMIZE,
    ),
    state=(
        State("momentum_buffer", shape=_muon_kept),
        State("exp_avg", shape=_adamw_kept),
        State("exp_avg_sq", shape=_adamw_kept),
    ),
    chunk=None,
    reference=reference.muon_adamw,
    update=matrices.muon_adamw_update,
    lr=1e-3,
    hidden_matrices=True,
    variants=(
        *MUON_VARIANTS,
        Variant("adamw", {"adamw_betas": (0.8, 0.9), "adamw_eps": 1e-3, "maximize": True}),
    ),
    error_inputs=(
        *MUON_ERRORS,
        ErrorInput({"adamw_betas": (1.0, 0.9)}, ValueError, r"adamw_betas\[0\]"),
    ),
    converges={
        "quadratic": {"lr": 1e-2, "weight_decay": 0.0},
        "rosenbrock": {"lr": 3e-2, "weight_decay": 0.0},
    },
    search_space={
        "lr": LogUniform(1e-5, 1e-1),
        "momentum": Uniform(0.8, 0.99),
        "weight_decay": LogUniform(1e-4, 0.3),
    },
)


ADAMAX = OptimizerSpec(
    name="adamax",
    class_name="Adamax",
    summary="Adamax (Kingma & Ba 2015, section 7.1): Adam with the infinity norm, as torch's.",
    doc=r"""
    .. math::
        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
        u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \quad
        p_t = p_{t-1} - \frac{\gamma}{1 - \beta_1^t} \frac{m_t}{u_t}
    """,
    hyperparameters=(
        Real("lr", 2e-3),
        BETAS,
        Real("eps", 1e-8),
        Real("weight_decay", 0.0, doc="L2 penalty added to the gradient"),
        MAXIMIZE,
    ),
    state=(State("exp_avg"), State("exp_inf")),
    chunk=kernels.adamax_chunk,
    reference=reference.adamax,
    lr=2e-3,
    variants=(
        Variant("default", {}),
        Variant("l2", {"weight_decay": 0.1}),
        Variant("everything", {"betas": (0.5, 0.6), "eps": 1e-3, "maximize": True}),
    ),
    error_inputs=(*LR_ERRORS, *BETA_ERRORS),
    converges={"quadratic": {"lr": 0.1}, "rosenbrock": {"lr": 0.1}},
    search_space=ADAPTIVE_SPACE,
    torch_peer="Adamax",
    inplace_peer=inplace.adamax,
)

RADAM = OptimizerSpec(
    name="radam",
    class_name="RAdam",
    summary="Rectified Adam (Liu et al. 2020), as ``torch.optim.RAdam``.",
    doc=r"""
    Adam's moments; with :math:`\rho_\infty = 2/(1-\beta_2) - 1` and
    :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`, the step is
    :math:`\hat m_t \gamma` (SGD with momentum) while :math:`\rho_t \le 5`, and afterwards

    .. math::
        p_t &= p_{t-1} - \hat m_t \gamma \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon} r_t \\
        r_t &= \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}
                          {(\rho_\infty-4)(\rho_\infty-2)\rho_t}}

    With the default betas the switch happens at step 6.
    """,
    hyperparameters=(
        Real("lr", 1e-3),
        BETAS,
        Real("eps", 1e-8),
        Real("weight_decay", 0.0),
        Flag("decoupled_weight_decay", False, doc="AdamW-style decay instead of L2"),
        MAXIMIZE,
    ),
    state=(State("exp_avg"), State("exp_avg_sq")),
    chunk=kernels.radam_chunk,
    reference=reference.radam,
    lr=1e-3,
    variants=(
        Variant("default", {}),
        Variant("l2", {"weight_decay": 0.1}),
        Variant("decoupled", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
        # rho_t > 5 from step 2 with beta2 = 0.5: no warm-up phase
        Variant("no_warmup", {"betas": (0.8, 0.5), "eps": 1e-3, "maximize": True}),
    ),
    error_inputs=(*LR_ERRORS, *BETA_ERRORS),
    converges={"quadratic": {"lr": 0.1}, "rosenbrock": {"lr": 2e-3}},
    search_space=ADAPTIVE_SPACE,
    torch_peer="RAdam",
    inplace_peer=inplace.radam,
    inplace_scratch=2,
)

LION = OptimizerSpec(
    name="lion",
    class_name="Lion",
    summary="Lion (Chen et al. 2023): the sign of an interpolated momentum, with decoupled decay.",
    doc=r"""
    .. math::
        c_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        p_t &= p_{t-1} (1 - \gamma\lambda) - \gamma\,\mathrm{sign}(c_t) \\
        m_t &= \beta_2 m_{t-1} + (1 - \beta_2) g_t

    Every element moves by exactly ``lr`` (plus decay), so ``lr`` is typically 3-10x smaller
    than AdamW's and ``weight_decay`` as much larger.
    """,
    hyperparameters=(
        Real("lr", 1e-4),
        Reals("betas", (0.9, 0.99), names=("beta1", "beta2")),
        Real("weight_decay", 0.0),
        MAXIMIZE,
    ),
    state=(State("exp_avg"),),
    chunk=kernels.lion_chunk,
    reference=reference.lion,
    lr=1e-4,
    variants=(
        Variant("default", {}),
        Variant("decay", {"weight_decay": 0.5}),
        Variant("everything", {"betas": (0.5, 0.7), "maximize": True, "weight_decay": 0.1}),
    ),
    error_inputs=(*LR_ERRORS, *BETA_ERRORS),
    converges={"quadratic": {"lr": 1e-2}, "rosenbrock": {"lr": 1e-3}},
    search_space={**ADAPTIVE_SPACE, "lr": LogUniform(1e-6, 1e-2)},
    inplace_peer=inplace.lion,
    inplace_scratch=2,
)


def _nadam_coefficients(options, step, scalars):
    """torch's NAdam schedule: ``mu_t = beta1 (1 - 0.5 * 0.96**(t psi))``, ``P_t = P_{t-1}
    mu_t``; returns ``lr (1 - mu_t) / (1 - P_t)`` and ``lr mu_{t+1} / (1 - P_t mu_{t+1})``."""
    beta1, psi, lr = options["betas"][0], options["momentum_decay"], options["lr"]
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
    product = scalars["mu_product"] * mu
    scalars["mu_product"] = product
    return lr * (1.0 - mu) / (1.0 - product), lr * mu_next / (1.0 - product * mu_next)


NADAM = OptimizerSpec(
    name="nadam",
    class_name="NAdam",
    summary="NAdam (Dozat 2016): Adam with Nesterov momentum, as ``torch.optim.NAdam``.",
    doc=r"""
    .. math::
        \mu_t &= \beta_1 (1 - \tfrac12 0.96^{t\psi}), \quad P_t = \textstyle\prod_{i \le t} \mu_i \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
        d_t = \sqrt{v_t / (1 - \beta_2^t)} + \epsilon \\
        p_t &= p_{t-1} - \gamma \frac{1 - \mu_t}{1 - P_t} \frac{g_t}{d_t}
              - \gamma \frac{\mu_{t+1}}{1 - P_t \mu_{t+1}} \frac{m_t}{d_t}

    The product :math:`P_t` is kept per group in float64 and listed per array as
    ``mu_product`` in ``state_dict``, as torch does.
    """,
    hyperparameters=(
        Real("lr", 2e-3),
        BETAS,
        Real("eps", 1e-8),
        Real("weight_decay", 0.0),
        Real("momentum_decay", 4e-3, kernel=False, doc="psi"),
        Flag("decoupled_weight_decay", False, doc="AdamW-style decay (NAdamW)"),
        MAXIMIZE,
    ),
    state=(State("exp_avg"), State("exp_avg_sq")),
    chunk=kernels.nadam_chunk,
    reference=reference.nadam,
    lr=2e-3,
    variants=(
        Variant("default", {}),
        Variant("l2", {"weight_decay": 0.1}),
        Variant("decoupled", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
        Variant(
            "everything",
            {"betas": (0.5, 0.9), "momentum_decay": 0.1, "eps": 1e-3, "maximize": True},
        ),
    ),
    error_inputs=(*LR_ERRORS, *BETA_ERRORS, ErrorInput({"momentum_decay": -1.0})),
    converges={"quadratic": {"lr": 1e-2}, "rosenbrock": {"lr": 1e-2}},
    search_space=ADAPTIVE_SPACE,
    torch_peer="NAdam",
    inplace_peer=inplace.nadam,
    inplace_scratch=2,
    derived=("grad_coefficient", "avg_coefficient"),
    group_scalars=(GroupScalar("mu_product", 1.0, low=0.0, high=1.0),),
    prepare_step=_nadam_coefficients,
)

ADABOUND = OptimizerSpec(
    name="adabound",
    class_name="AdaBound",
    summary="AdaBound and AMSBound (Luo et al. 2019): Adam with dynamic bounds on the step size.",
    doc=r"""
    .. math::
        \eta_t &= \gamma_{lr} \sqrt{1 - \beta_2^t} / (1 - \beta_1^t), \quad
        f = \text{final\_lr} \cdot \gamma_{lr} / \text{base\_lr} \\
        p_t &= p_{t-1} - \mathrm{clip}\Big(\frac{\eta_t}{\sqrt{v_t} + \epsilon},\,
              f\big(1 - \tfrac{1}{\gamma t + 1}\big),\,
              f\big(1 + \tfrac{1}{\gamma t}\big)\Big)\, m_t

    The bounds converge to ``f``: AdaBound starts like Adam and ends like SGD at rate ``f``.
    ``base_lr`` is the group's ``lr`` at construction (a schedule that lowers ``lr`` lowers the
    final rate with it, as in the paper's code).
    """,
    hyperparameters=(
        Real("lr", 1e-3),
        BETAS,
        Real("final_lr", 0.1),
        Real("gamma", 1e-3, high=1.0, high_open=True, doc="convergence speed of the bounds"),
        Real("eps", 1e-8),
        Real("weight_decay", 0.0),
        Flag("amsbound", False),
        MAXIMIZE,
        Real(
            "base_lr",
            None,
            low_open=True,
            in_signature=False,
            default_from="lr",
            doc="the lr that final_lr is relative to; by default the lr at construction",
        ),
    ),
    state=(
        State("exp_avg"),
        State("exp_avg_sq"),
        State("max_exp_avg_sq", used_when="amsbound"),
    ),
    chunk=kernels.adabound_chunk,
    reference=reference.adabound,
    lr=1e-3,
    variants=(
        Variant("default", {}),
        Variant("amsbound", {"amsbound": True}),
        Variant("decay", {"weight_decay": 0.1, "final_lr": 0.01}),
        # gamma = 0.5 closes the bounds within the test's steps
        Variant(
            "everything", {"gamma": 0.5, "betas": (0.5, 0.9), "maximize": True, "amsbound": True}
        ),
    ),
    error_inputs=(
        *LR_ERRORS,
        *BETA_ERRORS,
        ErrorInput({"gamma": 1.0}, ValueError, "gamma"),
        ErrorInput({"lr": 0.0}, ValueError, "base_lr"),
    ),
    converges={"quadratic": {"lr": 1e-2}, "rosenbrock": {"lr": 3e-2, "final_lr": 1e-3}},
    search_space={**ADAPTIVE_SPACE, "final_lr": LogUniform(1e-3, 1.0)},
    inplace_peer=inplace.adabound,
)

BUILTIN = (
    SGD,
    ADAGRAD,
    ADADELTA,
    RPROP,
    ASGD,
    RMSPROP,
    ADAM,
    ADAMW,
    ADOPT,
    ADEMAMIX,
    ADAN,
    SCHEDULE_FREE_SGD,
    SCHEDULE_FREE_ADAMW,
    LAMB,
    LARS,
    PRODIGY,
    ADAFACTOR,
    MUON,
    MUON_ADAMW,
    ADAMAX,
    RADAM,
    LION,
    NADAM,
    ADABOUND,
)
