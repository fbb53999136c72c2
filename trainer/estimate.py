"""How long a training run will take, said before it starts.

The optimiser steps follow from the examples, the batch shape and the epochs (or
--max-steps). Their time comes from the last run on this machine with the same base
model and batch shape (its seconds per step, recorded in the adapter's metrics): a step's
cost depends on those, not on how many examples there are. A first run has no such
figure; trainer/sft.py then says the estimate after its first step, before the rest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from persona.adapters import AdapterVersion
from trainer.sft import TrainOptions, minutes

_SAME_SHAPE = ("batch_size", "grad_accumulation", "max_seq_len", "lora_rank", "lora_targets", "load_in_4bit")


@dataclass(frozen=True)
class Estimate:
    steps: int
    seconds_per_step: float | None  # None: no earlier run of this shape here
    measured_on: str | None  # the version whose run gave seconds_per_step
    budget_s: float

    @property
    def seconds(self) -> float | None:
        if self.seconds_per_step is None:
            return None
        planned = self.steps * self.seconds_per_step
        return min(planned, self.budget_s) if self.budget_s else planned

    def line(self, examples: int, epochs: float) -> str:
        planned = f"{self.steps:,} optimiser steps over {examples:,} examples" + (f" ({epochs:g} epochs)" if epochs else "")
        if self.seconds is None:
            return f"training: {planned}; the first run of this shape here: the time is estimated after the first step"
        cut = " (cut to the time budget)" if self.budget_s and self.steps * (self.seconds_per_step or 0) > self.budget_s else ""
        return (f"training: {planned}, about {minutes(self.seconds)}{cut} — {self.seconds_per_step:.1f} s a step, "
                f"as {self.measured_on}'s run here took")


def planned_steps(examples: int, options: TrainOptions, processes: int = 1) -> int:
    """The optimiser steps of a run (what trainer/sft.py gives transformers as max_steps)."""
    if options.max_steps > 0:
        return options.max_steps
    per_epoch = math.ceil(examples / (options.batch_size * options.grad_accumulation * max(1, processes)))
    return max(1, math.ceil(per_epoch * options.epochs))


def estimate(examples: int, options: TrainOptions, versions: Sequence[AdapterVersion], base_model: str, processes: int = 1) -> Estimate:
    steps = planned_steps(examples, options, processes)
    wanted = options.to_json()
    for version in sorted(versions, key=lambda v: v.id, reverse=True):
        train = version.metrics.get("train") or {}
        if (version.base_model == base_model and train.get("steps") and train.get("seconds")
                and all(version.hyperparams.get(key) == wanted[key] for key in _SAME_SHAPE)):
            return Estimate(steps, float(train["seconds"]) / int(train["steps"]), version.label, options.time_budget_s)
    return Estimate(steps, None, None, options.time_budget_s)
