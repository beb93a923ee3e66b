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
from metrics.inception import InceptionUnavailable, LoadedInception, load_inception
from metrics.suite import (
    EvalSettings,
    MetricInputError,
    fmnist_metrics,
    generate,
    inception_metrics,
    protocol,
    reference_features,
)
from models.data_options import DataOptions
from models.registry import Variant


class Scorer:
    """Scores generators against the Fashion-MNIST test split with the evaluator metrics."""

    def __init__(
        self,
        settings: EvalSettings,
        data_dir: str | None,
        device: str = "cpu",
        inception_weights: str | None = None,
    ) -> None:
        self.settings, self.data_dir, self.device = settings, data_dir, device
        self.inception_weights = inception_weights
        self._extractor: FMNISTEvaluatorExtractor | None = None
        self._refs: dict[tuple[int, ...] | None, tuple[dict, torch.Tensor, dict]] = {}
        self._inception: LoadedInception | InceptionUnavailable | None = None
        self._inception_refs: dict[tuple[int, ...] | None, tuple[dict, dict]] = {}

    @property
    def inception(self) -> LoadedInception:
        """The Inception extractor (loaded once; a failure is remembered, not retried).

        Raises:
            InceptionUnavailable: neither the full nor the offline network is available.
        """
        if self._inception is None:
            try:
                self._inception = load_inception(cache_dir(), self.inception_weights)
                self._inception.extractor.weights_sha256 = self._inception.weights.sha256
            except InceptionUnavailable as exc:
                self._inception = exc
        if isinstance(self._inception, InceptionUnavailable):
            raise self._inception
        return self._inception

    def inception_reference(self, classes: tuple[int, ...] | None) -> tuple[dict, dict]:
        """Inception features of a fixed random subset of the test split (metric seed)."""
        if classes not in self._inception_refs:
            ref = load_part(DataOptions(classes=classes), "test", self.data_dir)
            n = min(self.settings.inception_samples, len(ref))
            g = torch.Generator().manual_seed(self.settings.metric_seed)
            pick = torch.randperm(len(ref), generator=g)[:n].sort().values
            images = ref.images[pick]
            desc = {
                "dataset": "fashion-mnist",
                "split": "test",
                "classes": list(classes) if classes is not None else "all",
                "size": n,
                "subset": f"randperm(seed {self.settings.metric_seed})[:{n}]" if n < len(ref)
                else "all",
                "images_sha256": hashlib.sha256(images.numpy().tobytes()).hexdigest(),
            }  # fmt: skip
            ext = self.inception.extractor
            feats = reference_features(
                ext, images, desc, cache_dir(), self.settings.inception_batch_size
            )
            self._inception_refs[classes] = (feats, desc)
        return self._inception_refs[classes]

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
        row: dict[str, Any] = {
            "metrics": values,
            "protocol": {"fmnist": protocol(self.extractor, self.settings, desc, notes)},
        }
        if self.settings.inception_samples > 0:
            row["metrics_unavailable"] = {}
            try:
                self._score_inception(variant, G, images, row)
            except InceptionUnavailable as exc:
                for key in INCEPTION_KEYS:
                    row["metrics_unavailable"][key] = str(exc)
            except MetricInputError as exc:
                for key in INCEPTION_KEYS:
                    row["metrics_unavailable"][key] = str(exc)
        row["eval_seconds"] = round(time.perf_counter() - t0, 2)
        return row

    def _score_inception(
        self, variant: Variant, G: nn.Module, images: torch.Tensor, row: dict[str, Any]
    ) -> None:
        n = self.settings.inception_samples
        if n > len(images):  # same latents as the evaluator metrics, extended
            images, _ = generate(G, variant, n, self.settings.metric_seed, self.device)
        feats, desc = self.inception_reference(variant.data.classes)
        inc = self.inception
        values, notes = inception_metrics(inc.extractor, images[:n], feats, self.settings)
        row["metrics"].update(values)
        proto = protocol(inc.extractor, self.settings, desc, notes)
        proto["num_samples"] = n
        proto["weights_source"] = inc.weights.source
        proto["weights_standard"] = inc.weights.standard
        row["protocol"]["inception"] = proto
        if inc.is_unavailable:
            row["metrics_unavailable"]["is_inception"] = inc.is_unavailable
            row["metrics_unavailable"]["is_inception_std"] = inc.is_unavailable


INCEPTION_KEYS = (
    "is_inception",
    "is_inception_std",
    "fid_inception",
    "kid_inception",
    "kid_inception_std",
    "precision_inception",
    "recall_inception",
)
