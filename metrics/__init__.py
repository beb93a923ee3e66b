"""Metrics layer on torch-fidelity (IS, FID, KID, precision/recall, evaluator metrics).

Built in the metrics issue; training results rows are designed to receive its scores.
"""
