"""``bench run`` without ``--jobs``: one job after another in this process, at the plan's
CPU thread count, each training set parsed once for all the jobs that share it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from bench.data import Dataset, load_part
from bench.engines.common import Batch, Engine
from bench.jobs import format_row, record, run_job
from models.data_options import DataOptions


class LocalEngine(Engine):
    """Runs the batch here, in order; a job's failure is its row, not the end of the run."""

    def run(self, batch: Batch) -> list[dict[str, Any]]:
        """Train, score and record each job of ``batch``; return the rows written now."""
        plan, run = batch.plan, batch.run
        written: list[dict[str, Any]] = []
        data_cache: dict[tuple[DataOptions, str | None], Dataset] = {}
        with _threads(plan.threads):
            for variant_name, seed in batch.todo:
                options = plan.variant(variant_name).data
                key = (options, plan.data_dir)
                if key not in data_cache:
                    data_cache[key] = load_part(options, "train", plan.data_dir)
                with run.job_locked(variant_name, seed):
                    job_dir = run.job_dir(variant_name, seed)
                    row = run_job(plan, variant_name, seed, job_dir, data_cache[key], batch.scorer)
                    record(run, row)
                written.append(row)
                batch.echo(format_row(row))
        return written


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` for the block (None: unchanged)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
