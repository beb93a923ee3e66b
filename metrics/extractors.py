"""Feature extractors registered with torch-fidelity.

``fmnist-evaluator``: the shipped Fashion-MNIST CNN (features ``logits`` for IS, ``features``
for FID/KID/precision/recall). Registering it makes it usable by name in
``torch_fidelity.calculate_metrics(feature_extractor="fmnist-evaluator", ...)`` too.
"""

from __future__ import annotations

import torch
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from metrics.evaluator import load_evaluator

FMNIST_EXTRACTOR = "fmnist-evaluator"


class FMNISTEvaluatorExtractor(FeatureExtractorBase):
    """torch-fidelity wrapper of :class:`metrics.evaluator.FMNISTEvaluator`.

    Input: uint8 images (N, C, H, W), C in {1, 3}, any size (resized to 28x28).
    """

    def __init__(
        self,
        name: str,
        features_list: list[str],
        feature_extractor_weights_path: str | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(name, features_list)
        self.model, self.weights_sha256 = load_evaluator(feature_extractor_weights_path)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The requested features, in the order of ``features_list``."""
        logits, feats = self.model(x)
        out = {"logits": logits.float(), "features": feats.float()}
        return tuple(out[name] for name in self.features_list)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("logits", "features")

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return {"isc": "logits", "fid": "features", "kid": "features", "prc": "features"}[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros(1, 1, 28, 28, dtype=torch.uint8)


if FMNIST_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
    register_feature_extractor(FMNIST_EXTRACTOR, FMNISTEvaluatorExtractor)
