"""The execution engines, side by side: ``local`` (one job after another in this process),
``pool`` (``--jobs N`` worker processes) and ``slurm`` / ``submitit-local`` (a submitit job
array). Each is one module with an :class:`~bench.engines.common.Engine` subclass, registered
below by name; a new engine is one file plus one line here. Modules load only when chosen,
so a run on the CPU never imports submitit.
"""

from __future__ import annotations

import importlib

from bench.engines.common import Engine, EngineOptions

# name -> "module:class"; the executor names are those of `bench run --executor`, and
# "pool" is what `local` becomes with --jobs N > 1.
ENGINES: dict[str, str] = {
    "local": "bench.engines.local:LocalEngine",
    "pool": "bench.engines.pool:PoolEngine",
    "slurm": "bench.engines.submitit:SubmititEngine",
    "submitit-local": "bench.engines.submitit:SubmititEngine",
}


def make_engine(name: str, options: EngineOptions) -> Engine:
    """The registered engine ``name``, configured with ``options``.

    Raises:
        KeyError: no engine of that name.
    """
    if name not in ENGINES:
        raise KeyError(f"no execution engine {name!r}; known: {sorted(ENGINES)}")
    module, cls = ENGINES[name].split(":")
    engine: Engine = getattr(importlib.import_module(module), cls)(options)
    return engine
