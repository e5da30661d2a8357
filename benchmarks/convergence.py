"""Where every registry optimizer gets on every registry problem in a fixed budget.

Each run: ``optbench.runner.run`` with the optimizer's registry learning rate, ``BUDGET``
steps, mini-batches of ``BATCH_SIZE`` (the full batch for smaller training sets), seed 0.
Seeded runs give the same numbers every time (the thread counts are pinned in
``benchmarks/__init__``), so any change of a track is a change of the code. All runs are made
once, in asv's ``setup_cache`` (one process for the whole class), and the tracks read them:

* ``track_final_loss``: the full training loss (eval mode) after the budget, NaN if diverged;
* ``track_test_accuracy``: held-out accuracy after the budget (classifiers only);
* ``track_steps_to_target``: the first evaluated step whose full training loss is at most
  ``floor + TARGET_FRACTION * (loss_0 - floor)`` (``floor``: the problem's known optimum, else
  0), or ``BUDGET + 1`` if never reached;
* ``track_diverged_at``: the step at which the run diverged, 0 if it did not (a run that starts
  diverging shows here even though its final loss is NaN, which asv cannot tell from a skip).
"""

import math

from optbench import registry, runner
from optbench.problems import PROBLEMS

from .common import SMOKE

BUDGET = 20 if SMOKE else 300
BATCH_SIZE = 32
SEED = 0
TARGET_FRACTION = 0.5
# the optimizers that take every array of the problems (Muon, for matrices only, is there as
# muon_adamw)
NAMES = [name for name in registry.names() if registry.get(name).ndims is None]


def outcome(optimizer, problem_name):
    """The four tracked numbers of one run, as a dict."""
    problem = PROBLEMS[problem_name](seed=SEED)
    batch_size = BATCH_SIZE if problem.n_train >= BATCH_SIZE else "full"
    record = runner.run(optimizer, problem_name, batch_size=batch_size, steps=BUDGET, seed=SEED)
    evaluated = record[record["full_train_loss"].notna()]
    diverged = record.loc[record["diverged"], "step"]
    initial = float(evaluated["full_train_loss"].iloc[0])
    floor = problem.optimum if problem.optimum is not None else 0.0
    target = floor + TARGET_FRACTION * (initial - floor)
    reached = evaluated.loc[evaluated["full_train_loss"] <= target, "step"]
    last = record.iloc[-1]
    return {
        "final_loss": math.nan if len(diverged) else float(last["full_train_loss"]),
        "test_accuracy": float(last["test_accuracy"]) if problem.classifier else None,
        "steps_to_target": int(reached.iloc[0]) if len(reached) else BUDGET + 1,
        "diverged_at": int(diverged.iloc[0]) if len(diverged) else 0,
    }


class _Runs:
    """Every run, made once: asv keys ``setup_cache`` by its source line, so the subclasses
    share one cache."""

    timeout = 1200

    def setup_cache(self):
        return {(o, p): outcome(o, p) for o in NAMES for p in PROBLEMS}

    def setup(self, outcomes, optimizer, problem):
        self.outcome = outcomes[optimizer, problem]


class Convergence(_Runs):
    params = (NAMES, list(PROBLEMS))
    param_names = ("optimizer", "problem")

    def track_final_loss(self, *_):
        return self.outcome["final_loss"]

    track_final_loss.unit = "loss"

    def track_steps_to_target(self, *_):
        return self.outcome["steps_to_target"]

    track_steps_to_target.unit = "steps"

    def track_diverged_at(self, *_):
        return self.outcome["diverged_at"]

    track_diverged_at.unit = "step"


class Accuracy(_Runs):
    params = (NAMES, [name for name, cls in PROBLEMS.items() if cls.classifier])
    param_names = ("optimizer", "problem")
    unit = "accuracy"

    def track_test_accuracy(self, *_):
        return self.outcome["test_accuracy"]
