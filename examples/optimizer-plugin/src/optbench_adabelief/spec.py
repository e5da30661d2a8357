"""The declaration optbench reads: hyperparameters in the kernel's order, the state buffers in
its row order, the kernel, the reference, variants, error inputs and a search space."""

from optbench.spec import (
    ErrorInput,
    Flag,
    LogUniform,
    OptimizerSpec,
    Real,
    Reals,
    State,
    Variant,
)

from .kernel import adabelief_chunk
from .reference import adabelief

ADABELIEF = OptimizerSpec(
    name="adabelief",
    class_name="AdaBelief",
    summary="AdaBelief (Zhuang et al. 2020): Adam whose step adapts to the belief in the gradient.",
    doc=r"""
    .. math::
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        s_t &= \beta_2 s_{t-1} + (1 - \beta_2) (g_t - m_t)^2 + \epsilon \\
        p_t &= p_{t-1} - \frac{\gamma}{1 - \beta_1^t}
              \frac{m_t}{\sqrt{s_t / (1 - \beta_2^t)} + \epsilon}

    The authors' default eps is 1e-16: it is added to ``s_t`` at every step as well.
    """,
    hyperparameters=(
        Real("lr", 1e-3),
        Reals("betas", (0.9, 0.999), names=("beta1", "beta2")),
        Real("eps", 1e-16),
        Real("weight_decay", 0.0),
        Flag("decoupled_weight_decay", True, doc="AdamW-style decay, the authors' default"),
        Flag("maximize", False, kernel=False, keyword_only=True),
    ),
    state=(State("exp_avg"), State("exp_avg_var")),
    chunk=adabelief_chunk,
    reference=adabelief,
    lr=1e-3,
    variants=(
        Variant("default", {}, "the authors' defaults"),
        Variant("l2", {"weight_decay": 0.1, "decoupled_weight_decay": False}, "L2 in the gradient"),
        Variant("decoupled", {"weight_decay": 0.1}, "decoupled decay"),
        Variant("everything", {"betas": (0.5, 0.9), "eps": 1e-3, "maximize": True}),
    ),
    error_inputs=(
        ErrorInput({"lr": -1.0}, ValueError, "lr"),
        ErrorInput({"betas": (1.0, 0.9)}, ValueError, r"betas\[0\]"),
        ErrorInput({"eps": "small"}, TypeError, "eps"),
    ),
    converges={"quadratic": {"lr": 3e-2}, "rosenbrock": {"lr": 2e-2}},
    search_space={"lr": LogUniform(1e-5, 1e-1), "eps": LogUniform(1e-16, 1e-8)},
)
