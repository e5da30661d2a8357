"""Every optimizer with a ``torch.optim`` peer against torch: 60 steps of gradients of varied
sizes, several shapes, two parameter groups with different options, both dtypes; the largest
difference relative to the largest value is at most 1e-9 in float64 and 2e-5 in float32."""

import inspect

import numpy as np
import pytest
from optim_helpers import make_params

from optbench import optim, registry
from optbench.testing import working_precision

torch = pytest.importorskip("torch")

PEERED = [spec for spec in registry.specs() if spec.torch_peer is not None]
SHAPES = ((7, 5), (33,), (2, 3, 4))
STEPS = 60
TOLERANCE = {np.float64: 1e-9, np.float32: 2e-5}


def _groups(spec, arrays):
    """Two groups: the defaults, and the spec's last variant (every option it changes)."""
    return [
        {"params": arrays[:2]},
        {"params": arrays[2:], **spec.variants[-1].options},
    ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("spec", PEERED, ids=lambda spec: spec.name)
def test_sixty_steps_match_torch(spec, dtype, rng):
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch's per-step scalars, as in optbench check
    try:
        params = make_params(rng, dtype, SHAPES, spec=spec)
        twins = [torch.from_numpy(p.copy()) for p in params]
        opt = optim.make(spec, _groups(spec, params))
        torch_class = getattr(torch.optim, spec.torch_peer)
        accepted = set(inspect.signature(torch_class).parameters)
        groups = []
        for group, twin_group in zip(opt.param_groups, _groups(spec, twins), strict=True):
            options = {k: v for k, v in group.items() if k in accepted}
            groups.append({**options, "params": twin_group["params"]})
        peer = torch_class(groups)
        for _ in range(STEPS):
            scale = 10.0 ** rng.uniform(-3, 1)
            grads = [(scale * rng.standard_normal(p.shape)).astype(dtype) for p in params]
            opt.step(grads)
            for twin, grad in zip(twins, grads, strict=True):
                twin.grad = torch.from_numpy(grad.copy())
            with working_precision(torch):  # Muon's Newton-Schulz in the arrays' dtype
                peer.step()
        for ours, theirs in zip(params, twins, strict=True):
            theirs = theirs.numpy()
            largest = float(np.max(np.abs(theirs)))
            difference = float(np.max(np.abs(ours.astype(np.float64) - theirs)))
            assert difference <= TOLERANCE[dtype] * largest, (difference, largest)
    finally:
        torch.set_default_dtype(saved)
