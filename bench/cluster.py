"""Where the cluster engines run: :class:`ClusterSettings` (Slurm's partition, time limit,
GPUs, CPUs, memory, array parallelism, requeues, sbatch options) from a TOML file's
``[slurm]`` table and the ``--slurm-*`` options, and :func:`check_engine`, which says at once
when submitit or sbatch is missing. The engine itself is :mod:`bench.engines.submitit`; this
module imports neither torch nor submitit, so options are checked before anything loads.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.fsutil import read_toml
from bench.validate import int_problem, number_problem

ENGINES = ("slurm", "submitit-local")


class ClusterError(BenchError):
    """The cluster engine cannot be used here (no submitit, no sbatch) or was misconfigured."""


@dataclass(frozen=True)
class ClusterSettings:
    """Where and how the tasks run; Slurm's names in parentheses."""

    engine: str = "slurm"
    partition: str | None = None  # (--partition)
    time_min: int = 240  # wall-clock limit per task (--time); requeued when reached
    gpus: int = 0  # GPUs per task (--gpus-per-node)
    cpus: int = 2  # CPUs per task (--cpus-per-task); also the task's torch threads
    mem_gb: float | None = None  # memory per task (--mem)
    parallel: int | None = None  # tasks running at once (--array=...%N)
    signal_delay_s: int = 120  # the timeout signal comes this long before the limit
    max_requeues: int = 10  # timeouts a task may be requeued after
    params: tuple[tuple[str, str], ...] = ()  # any further sbatch option, e.g. account=abc
    setup: tuple[str, ...] = ()  # shell lines before the task, e.g. "module load cuda"

    @classmethod
    def from_toml(cls, path: Path, **overrides: Any) -> ClusterSettings:
        """The ``[slurm]`` table of a TOML file, then ``overrides`` (None: not given).

        Raises:
            ClusterError: unreadable file, unknown key or a value of the wrong type.
        """
        table = read_toml(path, ClusterError).get("slurm", {})
        if not isinstance(table, dict):
            raise ClusterError(f"{path}: [slurm] must be a table")
        names = {f.name: f for f in fields(cls)} if table else {}
        unknown = sorted(set(table) - set(names) - {"engine"})
        if unknown:
            raise ClusterError(f"{path}: unknown [slurm] key(s) {unknown}; known: "
                               f"{sorted(set(names) - {'engine'})}")  # fmt: skip
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key == "params":
                if not isinstance(value, dict):
                    raise ClusterError(f"{path}: [slurm] params must be a table of sbatch options")
                value = tuple((str(k), str(v)) for k, v in value.items())
            elif key == "setup":
                if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                    raise ClusterError(f"{path}: [slurm] setup must be a list of shell lines")
                value = tuple(value)
            values[key] = value
        return cls.checked(**{**values, **{k: v for k, v in overrides.items() if v is not None}})

    @classmethod
    def checked(cls, **values: Any) -> ClusterSettings:
        """Settings from keyword values, with types and ranges checked.

        Raises:
            ClusterError: an unknown engine, a wrong type or a value out of range.
        """
        s = cls(**values)
        if s.engine not in ENGINES:
            raise ClusterError(f"unknown cluster engine {s.engine!r}; one of {ENGINES}")
        ints = {"time_min": 1, "gpus": 0, "cpus": 1, "signal_delay_s": 0, "max_requeues": 0}
        problems = [int_problem(f"cluster setting {k}", getattr(s, k), low)
                    for k, low in ints.items()]  # fmt: skip
        if s.parallel is not None:
            problems.append(int_problem("cluster setting parallel", s.parallel, 1))
        if s.mem_gb is not None:
            problems.append(number_problem("cluster setting mem_gb", s.mem_gb, 0, above=True))
        problem = next((p for p in problems if p), None)
        if problem:
            raise ClusterError(problem)
        if s.partition is not None and not isinstance(s.partition, str):
            raise ClusterError(f"cluster setting partition must be a string, got {s.partition!r}")
        if s.signal_delay_s >= s.time_min * 60:
            raise ClusterError(f"signal_delay_s ({s.signal_delay_s}) must be shorter than the "
                               f"time limit ({s.time_min} min)")  # fmt: skip
        return s

    def executor(self, folder: Path, name: str) -> Any:
        """A configured submitit executor writing its pickles and logs under ``folder``."""
        import submitit

        if self.engine == "submitit-local":
            ex = submitit.LocalExecutor(folder=folder, max_num_timeout=self.max_requeues)
            ex.update_parameters(timeout_min=self.time_min, signal_delay_s=self.signal_delay_s)
            if self.gpus:
                ex.update_parameters(gpus_per_node=self.gpus)
            return ex
        ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=self.max_requeues)
        params: dict[str, Any] = dict(
            job_name=name, time=self.time_min, cpus_per_task=self.cpus, nodes=1,
            ntasks_per_node=1, signal_delay_s=self.signal_delay_s,
        )  # fmt: skip
        optional = {
            "partition": self.partition,
            "gpus_per_node": self.gpus or None,
            "mem": f"{self.mem_gb:g}GB" if self.mem_gb else None,
            "array_parallelism": self.parallel,
            "setup": list(self.setup) or None,
            "additional_parameters": dict(self.params) or None,
        }
        ex.update_parameters(**params, **{k: v for k, v in optional.items() if v is not None})
        return ex


def check_engine(engine: str) -> None:
    """Fail with one clear message when ``engine`` cannot submit from this machine."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ClusterError("the cluster engines need submitit: pip install submitit") from None
    if engine == "slurm":
        from shutil import which

        if which("sbatch") is None:
            raise ClusterError("--executor slurm needs Slurm's sbatch on PATH (submit from a "
                               "login node of the cluster); --executor submitit-local runs "
                               "the same path on this machine")  # fmt: skip
