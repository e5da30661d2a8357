"""Property-based tests of the optimizer API: random sequences of steps, edits of
``param_groups``, deep copies, pickles, state dict round trips and refused inputs, checked after
every operation against a plain model (the NumPy reference stepping a copy of every array).

The model keeps, for every array the optimizer holds, its expected values, the reference's
state and its step count, and for every group its options. An operation the optimizer must
refuse (a tampered state dict, an aliasing gradient) is checked to leave it exactly as it was.
"""

import copy
import json
import pickle

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from optim_helpers import assert_close

from optbench import optim, registry
from optbench.reference.optimizers import step_with_extras
from optbench.spec import conforming_shape

# optimizers whose state is per array: a group scalar (NAdam's mu_product) has no per-array
# reference once arrays move between groups, so NAdam is exercised without group edits below
PER_ARRAY = tuple(spec.name for spec in registry.specs() if not spec.group_scalars)
# a coupled optimizer (Prodigy) has no per-array reference: the conformance suite checks it
SHAPES = ((3, 2), (4,), (), (2, 2, 1))
LR_FACTORS = (0.25, 0.5, 1.0, 2.0)


class ArrayModel:
    """What one array should hold: its values, the reference's state and its step count."""

    def __init__(self, values):
        self.values = values.copy()
        self.state = {}
        self.steps = 0


class OptimizerMachine(RuleBasedStateMachine):
    """An optimizer and its model, stepped and edited together."""

    names = PER_ARRAY
    group_edits = True

    def __init__(self):
        super().__init__()
        self.rng = np.random.default_rng(0)

    # ------------------------------------------------------------ set-up and helpers
    @initialize(
        name=st.data(),
        shapes=st.lists(st.sampled_from(SHAPES), min_size=1, max_size=3),
        seed=st.integers(0, 2**16),
    )
    def start(self, name, shapes, seed):
        self.spec = registry.get(name.draw(st.sampled_from(self.names), label="optimizer"))
        self.rng = np.random.default_rng(seed)
        params = [self.fresh(shape) for shape in shapes]
        self.opt = optim.make(self.spec, params)
        self.models = {id(p): ArrayModel(p) for p in params}

    def fresh(self, shape):
        shape = conforming_shape(shape, self.spec.ndims)  # Muon takes matrices only
        return np.asarray(self.rng.standard_normal(shape), np.float64)

    def default_lr(self):
        return self.spec.defaults["lr"]

    def snapshot(self):
        """Everything observable: params, state dict (pickled) and group options."""
        return [p.copy() for p in self.opt.params], pickle.dumps(self.opt.state_dict())

    def assert_unchanged(self, before):
        params, state = self.snapshot()
        for a, b in zip(before[0], params, strict=True):
            np.testing.assert_array_equal(a, b)
        assert state == before[1]

    def options(self, group):
        return {k: v for k, v in group.items() if k != "params"}

    def adopt(self, clone):
        """Continue with ``clone``, a copy of the optimizer: the model follows array by array."""
        assert len(clone.params) == len(self.opt.params)
        for mine, theirs in zip(self.opt.params, clone.params, strict=True):
            assert mine is not theirs and not np.shares_memory(mine, theirs)
            self.models[id(theirs)] = self.models[id(mine)]
        self.opt = clone

    # ------------------------------------------------------------ steps
    @rule()
    def step(self):
        grads = [self.fresh(p.shape) for p in self.opt.params]
        self.opt.step(grads)
        flat = iter(grads)
        for group in self.opt.param_groups:
            for param in group["params"]:
                model = self.models[id(param)]
                model.steps += 1
                step_with_extras(
                    self.spec.reference,
                    model.values,
                    next(flat),
                    model.state,
                    model.steps,
                    **self.options(group),
                )

    @precondition(lambda self: len(self.opt.params) >= 2)
    @rule(data=st.data())
    def step_with_an_aliasing_gradient(self, data):
        params = self.opt.params
        i = data.draw(st.integers(0, len(params) - 1), label="gradient")
        j = (i + data.draw(st.integers(1, len(params) - 1), label="offset")) % len(params)
        if params[j].shape != params[i].shape or params[j].size == 0:
            return
        grads = [self.fresh(p.shape) for p in params]
        grads[i] = params[j]
        before = self.snapshot()
        try:
            self.opt.step(grads)
        except ValueError as error:
            assert f"grads[{i}]" in str(error)
        else:
            raise AssertionError("a gradient aliasing a parameter was accepted")
        self.assert_unchanged(before)

    # ------------------------------------------------------------ group edits
    @precondition(lambda self: self.group_edits)
    @rule(group=st.data(), factor=st.sampled_from(LR_FACTORS))
    def set_lr(self, group, factor):
        i = group.draw(st.integers(0, len(self.opt.param_groups) - 1), label="group")
        self.opt.param_groups[i]["lr"] = factor * self.default_lr()

    @precondition(lambda self: self.group_edits)
    @rule(shapes=st.lists(st.sampled_from(SHAPES), min_size=1, max_size=2))
    def add_param_group(self, shapes):
        arrays = [self.fresh(shape) for shape in shapes]
        self.opt.add_param_group({"params": arrays, "lr": 0.5 * self.default_lr()})
        self.models.update({id(p): ArrayModel(p) for p in arrays})

    @precondition(lambda self: self.group_edits and len(self.opt.param_groups) >= 2)
    @rule(data=st.data())
    def delete_group(self, data):
        i = data.draw(st.integers(0, len(self.opt.param_groups) - 1), label="group")
        del self.opt.param_groups[i]

    @precondition(lambda self: self.group_edits)
    @rule()
    def reverse_groups(self):
        self.opt.param_groups.reverse()

    @precondition(lambda self: self.group_edits)
    @rule(data=st.data(), add=st.booleans())
    def replace_params(self, data, add):
        i = data.draw(st.integers(0, len(self.opt.param_groups) - 1), label="group")
        group = self.opt.param_groups[i]
        kept = data.draw(st.lists(st.sampled_from(group["params"]), unique_by=id), label="kept")
        if add or not kept:
            new = self.fresh(data.draw(st.sampled_from(SHAPES), label="shape"))
            self.models[id(new)] = ArrayModel(new)
            kept.append(new)
        group["params"] = kept

    # ------------------------------------------------------------ copies and state dicts
    @rule()
    def deepcopy(self):
        self.adopt(copy.deepcopy(self.opt))

    @rule()
    def pickle_round_trip(self):
        self.adopt(pickle.loads(pickle.dumps(self.opt)))

    @rule()
    def state_dict_into_a_new_optimizer(self):
        """As a training script resumes: a new optimizer on the same arrays, loaded."""
        saved = pickle.loads(pickle.dumps(self.opt.state_dict()))
        groups = [{"params": list(g["params"])} for g in self.opt.param_groups]
        fresh = optim.make(self.spec, groups)
        fresh.load_state_dict(saved)
        for mine, theirs in zip(self.opt.params, fresh.params, strict=True):
            assert mine is theirs
        self.opt = fresh

    @rule(
        tamper=st.sampled_from(
            [
                "negative step",
                "huge step",
                "string keys",
                "json",
                "shape",
                "lr",
                "skipped",
                "unknown buffer",
                "missing group",
            ]
        )
    )
    def tampered_state_dict_is_refused(self, tamper):
        saved = self.opt.state_dict()
        state, groups = saved["state"], saved["param_groups"]
        some = next(iter(state))
        if tamper == "negative step":
            state[some]["step"] = -1
        elif tamper == "huge step":
            state[some]["step"] = 2**64
        elif tamper == "string keys":
            saved["state"] = {str(k): v for k, v in state.items()}
        elif tamper == "json":
            saved = json.loads(json.dumps(saved, default=lambda a: np.asarray(a).tolist()))
        elif tamper == "shape":
            names = [k for k, v in state[some].items() if isinstance(v, np.ndarray)]
            if not names:
                return
            state[some][names[0]] = np.zeros((*state[some][names[0]].shape, 2))
        elif tamper == "lr":
            groups[-1]["lr"] = -1.0
        elif tamper == "skipped":
            saved["skipped_steps"] = -1
        elif tamper == "unknown buffer":
            state[some]["not_a_buffer"] = np.zeros(self.opt.params[some].shape)
        elif tamper == "missing group":
            groups.pop()
            if not groups:
                saved["param_groups"] = []
        before = self.snapshot()
        try:
            self.opt.load_state_dict(saved)
        except (TypeError, ValueError):
            pass
        else:
            raise AssertionError(f"a state dict with a {tamper} was accepted")
        self.assert_unchanged(before)

    # ------------------------------------------------------------ what must hold throughout
    @invariant()
    def params_and_state_follow_the_model(self):
        if not hasattr(self, "opt"):
            return
        saved = self.opt.state_dict()
        index = 0
        for g, group in enumerate(self.opt.param_groups):
            assert self.options(saved["param_groups"][g]) == self.options(group)
            for param in group["params"]:
                model = self.models[id(param)]
                where = f"params[{index}] after {model.steps} steps"
                assert_close(param, model.values, np.float64, where)
                entry = saved["state"][index]
                assert entry["step"] == model.steps, where
                for name, value in model.state.items():
                    assert_close(entry[name], value, np.float64, f"{where}: {name}")
                index += 1
        assert index == len(self.opt.params)


class NAdamMachine(OptimizerMachine):
    """NAdam's ``mu_product`` is per group: steps, copies and state dicts, no group edits."""

    names = tuple(spec.name for spec in registry.specs() if spec.group_scalars and not spec.coupled)
    group_edits = False


SETTINGS = settings(
    max_examples=40,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
OptimizerMachine.TestCase.settings = SETTINGS
NAdamMachine.TestCase.settings = SETTINGS
TestOptimizerSequences = OptimizerMachine.TestCase
TestNAdamSequences = NAdamMachine.TestCase
