"""What every execution engine shares: the interface (:class:`Engine`, handed a
:class:`Batch` of jobs), the options a command gives (:class:`EngineOptions`), and the one
piece of work they all do before their jobs start (:func:`warm_caches`).

An engine runs the jobs of a batch, each with :func:`bench.jobs.run_job` under the job's
lock, and appends one row per job with :func:`bench.jobs.record`; the rows equal a
one-at-a-time run's at the same threads per job. Engines do not import each other; the
dispatcher (:mod:`bench.executor`) chooses one by name from :data:`bench.engines.ENGINES`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.cluster import ClusterSettings
from bench.data import load_part
from bench.jobs import RunPlan
from bench.runs import JobKey, RunFolder
from bench.scoring import Scorer
from metrics.evaluator import EvaluatorUnavailable
from metrics.family import MetricInputError
from metrics.inception import InceptionUnavailable

STATUS_EVERY_S = 60.0  # without progress bars: one line naming every running job this often


@dataclass(frozen=True)
class EngineOptions:
    """How a command asked its jobs to run: ``jobs`` at once on this machine, or as a
    cluster job array (``cluster``), waiting for them unless ``detach``."""

    jobs: int = 1
    cluster: ClusterSettings | None = None
    detach: bool = False


@dataclass
class Batch:
    """The unfinished jobs of a run folder, ready to run: the plan they share, the folder
    (whose lock the dispatcher holds), the jobs in order, the scorer whose references were
    checked, and where progress lines go."""

    plan: RunPlan
    run: RunFolder
    todo: list[JobKey]
    scorer: Scorer
    echo: Callable[[str], None]


class Engine:
    """An execution engine: ``run`` executes a batch and returns the rows written now.

    ``guard`` wraps everything the dispatcher does to the folder (its config.json included),
    so an engine that can be refused after that (a scheduler rejecting a submission) can put
    the folder back as it was.
    """

    def __init__(self, options: EngineOptions) -> None:
        self.options = options

    def guard(self, run: RunFolder) -> contextlib.AbstractContextManager[Any]:
        """Around the whole execution; nothing by default."""
        return contextlib.nullcontext()

    def run(self, batch: Batch) -> list[dict[str, Any]]:
        """Run every job of ``batch``; return the rows written now."""
        raise NotImplementedError

    def wait(
        self, plan: RunPlan, run: RunFolder, echo: Callable[[str], None]
    ) -> list[dict[str, Any]]:
        """Wait for the jobs of ``plan`` that an earlier, detached ``run`` left running
        elsewhere; return their rows. An engine that never detaches has none."""
        return []


def warm_caches(plan: RunPlan, scorer: Scorer, todo: list[JobKey]) -> None:
    """Parse the data and extract the reference features once, here, so that N workers or
    tasks read them from the caches instead of computing the same thing N times at once. A
    failure is left for the jobs to report in their rows, as a one-at-a-time run does."""
    for options in {plan.variant(v).data for v, _ in todo}:
        load_part(options, "train", plan.data_dir)
        classes, resolution = options.classes, options.resolution
        try:
            scorer.reference(classes, resolution)
            scorer.copying_features(classes, "fmnist", resolution)
            if scorer.settings.inception_samples > 0:
                scorer.inception_reference(classes, resolution)
                if scorer.settings.copying_inception:
                    scorer.copying_features(classes, "inception", resolution)
        except (EvaluatorUnavailable, InceptionUnavailable, MetricInputError):
            pass
