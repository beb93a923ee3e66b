"""Scoring glue: the bench side of the metrics layer (data in, metric row fields out).

The metrics package knows nothing of files or folders; this module loads the reference split
for a variant (the official test split, restricted to the variant's classes), keeps the
extractor and the reference features for the whole run, and scores each trained G_ema.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import torch
from torch import nn

from bench.data import cache_dir, load_part
from metrics.evaluator import EvaluatorUnavailable
from metrics.extractors import FMNIST_EXTRACTOR, FMNISTEvaluatorExtractor
from metrics.suite import (
    EvalSettings,
    MetricInputError,
    fmnist_metrics,
    generate,
    protocol,
    reference_features,
)
from models.data_options import DataOptions
from models.registry import Variant


class Scorer:
    """Scores generators against the Fashion-MNIST test split with the evaluator metrics."""

    def __init__(self, settings: EvalSettings, data_dir: str | None, device: str = "cpu") -> None:
        self.settings, self.data_dir, self.device = settings, data_dir, device
        self._extractor: FMNISTEvaluatorExtractor | None = None
        self._refs: dict[tuple[int, ...] | None, tuple[dict, torch.Tensor, dict]] = {}

    @property
    def extractor(self) -> FMNISTEvaluatorExtractor:
        """The evaluator as a torch-fidelity extractor (loaded once)."""
        if self._extractor is None:
            self._extractor = FMNISTEvaluatorExtractor(FMNIST_EXTRACTOR, ["logits", "features"])
        return self._extractor

    def reference(self, classes: tuple[int, ...] | None) -> tuple[dict, torch.Tensor, dict]:
        """(features, labels, description) of the test split restricted to ``classes``."""
        if classes not in self._refs:
            ref = load_part(DataOptions(classes=classes), "test", self.data_dir)
            digest = hashlib.sha256(ref.images.numpy().tobytes()).hexdigest()
            desc = {
                "dataset": "fashion-mnist",
                "split": "test",
                "classes": list(classes) if classes is not None else "all",
                "size": len(ref),
                "images_sha256": digest,
            }
            feats = reference_features(
                self.extractor, ref.images, desc, cache_dir(), self.settings.batch_size
            )
            self._refs[classes] = (feats, ref.labels, desc)
        return self._refs[classes]

    def score(self, variant: Variant, G: nn.Module) -> dict[str, Any]:
        """Row fields ``metrics``, ``protocol`` and ``eval_seconds`` for generator ``G``.

        A missing or mismatched evaluator does not crash the run: the row says why instead.
        """
        t0 = time.perf_counter()
        try:
            feats, labels, desc = self.reference(variant.data.classes)
            images, gen_labels = generate(
                G, variant, self.settings.num_samples, self.settings.metric_seed, self.device
            )
            values, notes = fmnist_metrics(
                self.extractor, images, gen_labels, feats, labels, variant.data.class_ids,
                self.settings,
            )  # fmt: skip
        except EvaluatorUnavailable as exc:
            return {"metrics": {}, "metrics_error": f"evaluator unavailable: {exc}"}
        except MetricInputError as exc:  # e.g. too few samples: the training result stands
            return {"metrics": {}, "metrics_error": str(exc)}
        return {
            "metrics": values,
            "protocol": {"fmnist": protocol(self.extractor, self.settings, desc, notes)},
            "eval_seconds": round(time.perf_counter() - t0, 2),
        }
