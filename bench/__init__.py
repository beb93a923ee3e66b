"""fmgan-bench orchestration: CLI, data, training harness, run folders and results."""

__version__ = "0.1.0"
