"""Metrics layer on torch-fidelity: the metric registry, the evaluator and Inception feature
passes (IS, FID, KID, precision/recall), path smoothness, and shared utilities."""
