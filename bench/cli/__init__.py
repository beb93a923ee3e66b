"""The ``bench`` command line, one small module per family of commands.

``bench list | train | run`` (:mod:`bench.cli.train`), ``perf | perf-metrics``
(:mod:`bench.cli.perf`), ``score | reference | sanity | weights`` (:mod:`bench.cli.score`),
``evaluator`` (:mod:`bench.cli.evaluator`), ``offline`` (:mod:`bench.cli.offline`),
``report | check | thresholds | status`` (:mod:`bench.cli.report`),
``sweep`` (:mod:`bench.cli.sweep`);
the group and its error handling in :mod:`bench.cli.base`, shared options in
:mod:`bench.cli.options`.
"""

from bench.cli import evaluator, offline, perf, report, score, sweep, train
from bench.cli.base import cli, main

__all__ = ["cli", "evaluator", "main", "offline", "perf", "report", "score", "sweep", "train"]
