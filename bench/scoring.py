"""Scoring glue: the bench side of the metrics layer (data in, metric row fields out).

The metrics package knows nothing of files or folders; this module loads the reference split
for a variant (the official test split, restricted to the variant's classes), keeps the
extractor and the reference features for the whole run, and scores each trained G_ema.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.data import IMAGE_SIZE, Dataset, cache_dir, load_part
from bench.errors import DataNotFoundError
from bench.reference import (
    ImportedReference,
    ReferenceFileError,
    check_matches,
    describe_split,
)
from metrics.common import downloads_disabled, no_download_reason
from metrics.evaluator import EvaluatorUnavailable
from metrics.extractors import FMNIST_EXTRACTOR, FMNISTEvaluatorExtractor
from metrics.family import EvalSettings, GeneratorContext, MetricInputError
from metrics.fid import fid
from metrics.inception import InceptionUnavailable, LoadedInception, load_inception
from metrics.isc import inception_score
from metrics.keys import families, group_keys
from metrics.suite import (
    extract,
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
        references: list[ImportedReference] | None = None,
    ) -> None:
        if torch.device(device).type == "cuda":  # a GPU takes far larger Inception batches
            settings = dataclasses.replace(
                settings, inception_batch_size=max(settings.inception_batch_size, 500)
            )
        self.settings, self.data_dir, self.device = settings, data_dir, device
        self.imported = {(r.kind, r.classes): r for r in references or []}
        self.inception_weights = inception_weights
        self._extractor: FMNISTEvaluatorExtractor | None = None
        # references by (classes, resolution): see describe_split
        self._refs: dict[tuple[tuple[int, ...] | None, int], tuple[dict, torch.Tensor, dict]] = {}
        self._inception: LoadedInception | InceptionUnavailable | None = None
        self._inception_refs: dict[tuple[tuple[int, ...] | None, int], tuple[dict, dict]] = {}
        self._copying: dict[tuple[str, tuple[int, ...] | None, int], tuple[dict, dict, dict]] = {}
        self._parts: dict[tuple[DataOptions, str], Dataset] = {}  # read once per scorer
        self._unavailable: dict[str, str] = {}  # keys known unavailable, and why
        if downloads_disabled():  # torch-fidelity would try GitHub
            reason = f"LPIPS-VGG16 weights not downloaded ({no_download_reason()})"
            self._unavailable["ppl_lpips"] = reason

    @property
    def inception(self) -> LoadedInception:
        """The Inception extractor (loaded once; a failure is remembered, not retried).

        Raises:
            InceptionUnavailable: neither the full nor the offline network is available.
        """
        if self._inception is None:
            try:
                self._inception = load_inception(cache_dir(), self.inception_weights)
                self._inception.extractor.to(self.device)  # features on the scoring device
                self._inception.extractor.weights_sha256 = self._inception.weights.sha256
            except InceptionUnavailable as exc:
                self._inception = exc
        if isinstance(self._inception, InceptionUnavailable):
            raise self._inception
        return self._inception

    def inception_reference(
        self, classes: tuple[int, ...] | None, resolution: int = IMAGE_SIZE
    ) -> tuple[dict, dict]:
        """Inception features of a fixed random subset of the test split (metric seed) at
        ``resolution``, the generator's training data's (:func:`describe_split`), or of an
        imported reference file covering exactly these classes (28x28 only)."""
        key = (classes, resolution)
        imported = self.imported.get(("inception", classes)) if resolution == IMAGE_SIZE else None
        if imported is not None and key not in self._inception_refs:
            inc = self.inception
            check_matches(imported, inc.weights.extractor, inc.weights.sha256)
            self._inception_refs[key] = (imported.features, imported.description())
        if key not in self._inception_refs:
            ref = self._part(DataOptions(classes=classes, resolution=resolution), "test")
            n = min(self.settings.inception_samples, len(ref))
            g = torch.Generator().manual_seed(self.settings.metric_seed)
            pick = torch.randperm(len(ref), generator=g)[:n].sort().values
            images = ref.images[pick]
            subset = f"randperm(seed {self.settings.metric_seed})[:{n}]" if n < len(ref) else "all"
            desc = describe_split(images, classes, "test", resolution, subset=subset)
            ext = self.inception.extractor
            feats = reference_features(
                ext, images, desc, cache_dir(), self.settings.inception_batch_size
            )
            self._inception_refs[key] = (feats, desc)
        return self._inception_refs[key]

    @property
    def extractor(self) -> FMNISTEvaluatorExtractor:
        """The evaluator as a torch-fidelity extractor (loaded once)."""
        if self._extractor is None:
            ext = FMNISTEvaluatorExtractor(FMNIST_EXTRACTOR, ["logits", "features"])
            self._extractor = ext.to(self.device)
        return self._extractor

    def check_references(self) -> None:
        """Refuse imported references made with another extractor or other weights (call
        before any training, so a mismatch costs nothing)."""
        for (kind, _), ref in self.imported.items():
            if kind == "fmnist":
                check_matches(ref, FMNIST_EXTRACTOR, self.extractor.weights_sha256)
            else:
                inc = self.inception
                check_matches(ref, inc.weights.extractor, inc.weights.sha256)

    def reference(
        self, classes: tuple[int, ...] | None, resolution: int = IMAGE_SIZE
    ) -> tuple[dict, torch.Tensor, dict]:
        """(features, labels, description) of the test split restricted to ``classes`` at
        ``resolution``, the generator's training data's (:func:`describe_split`; from an
        imported reference file when one covers exactly these classes, 28x28 only)."""
        key = (classes, resolution)
        imported = self.imported.get(("fmnist", classes)) if resolution == IMAGE_SIZE else None
        if imported is not None and key not in self._refs:
            check_matches(imported, FMNIST_EXTRACTOR, self.extractor.weights_sha256)
            if imported.labels is None:
                raise ReferenceFileError(f"{imported.path}: evaluator reference without labels")
            self._refs[key] = (imported.features, imported.labels, imported.description())
        if key not in self._refs:
            ref = self._part(DataOptions(classes=classes, resolution=resolution), "test")
            desc = describe_split(ref.images, classes, "test", resolution)
            feats = reference_features(
                self.extractor, ref.images, desc, cache_dir(), self.settings.batch_size
            )
            self._refs[key] = (feats, ref.labels, desc)
        return self._refs[key]

    def _part(self, options: DataOptions, split: str) -> Dataset:
        """A data part, parsed once for every job this scorer scores (the references, the
        copying test, CAS and the nearest-image figure all read the same parts)."""
        key = (options, split)
        if key not in self._parts:
            self._parts[key] = load_part(options, split, self.data_dir)  # type: ignore[arg-type]
        return self._parts[key]

    def copying_features(
        self, classes: tuple[int, ...] | None, kind: str, resolution: int = IMAGE_SIZE
    ) -> tuple[dict, dict, dict[str, Any]]:
        """The data-copying test's training features T (every training image of ``classes``)
        and held-out features P_n (the test images of :func:`copying_split`'s held-out half;
        its first ``inception_samples`` for the Inception pass) for the ``fmnist`` or
        ``inception`` pass, at ``resolution`` (the generator's training data)
        (:func:`describe_split`), cached like the references; and their descriptions."""
        key = (kind, classes, resolution)
        if key not in self._copying:
            seed = self.settings.metric_seed
            options = DataOptions(classes=classes, resolution=resolution)
            train, test = self._part(options, "train"), self._part(options, "test")
            held, _ = copying_split(len(test), seed)
            subset = f"copying_split(seed {seed}) held-out half"
            if kind == "inception":
                held = held[: self.settings.inception_samples]
                subset += f", first {len(held)}"
                ext: Any = self.inception.extractor
                batch = self.settings.inception_batch_size
            else:
                ext, batch = self.extractor, self.settings.batch_size
            held_images = test.images[held.sort().values]
            t_desc = describe_split(train.images, classes, "train", resolution)
            h_desc = describe_split(held_images, classes, "test", resolution, subset=subset)
            t_feats = reference_features(ext, train.images, t_desc, cache_dir(), batch)
            h_feats = reference_features(ext, held_images, h_desc, cache_dir(), batch)
            self._copying[key] = (t_feats, h_feats, {"train": t_desc, "held_out": h_desc})
        return self._copying[key]

    def quick_metrics(
        self, images: torch.Tensor, classes: tuple[int, ...] | None, resolution: int = IMAGE_SIZE
    ) -> dict[str, float]:
        """FID(fmnist) and IS(fmnist) of uint8 ``images`` against the (full, cached) test-split
        reference: the cheap pair tracked during training. Raises EvaluatorUnavailable or
        MetricInputError as the full scoring does."""
        feats = extract(self.extractor, images, self.settings.batch_size)
        ref = self.reference(classes, resolution)[0]["features"]
        is_mean, _ = inception_score(feats["logits"], self.settings)
        return {"fid_fmnist": fid(feats["features"], ref), "is_fmnist": is_mean}

    def score(
        self,
        variant: Variant,
        G: nn.Module,
        strip_path: Path | None = None,
        nearest_path: Path | None = None,
    ) -> dict[str, Any]:
        """Row fields ``metrics``, ``protocol``, ``eval_seconds`` and ``eval_cpu_seconds`` for ``G``
        (sampled in memory, eval mode, latents from the metric seed), plus the smoothness
        metrics; the interpolation strip is written to ``strip_path`` when given, and the
        first samples beside their nearest training images to ``nearest_path``
        (:mod:`bench.nearest`; ``nearest`` in the row: the training indices shown).

        A missing evaluator or Inception does not crash the run: the row says why instead.
        """
        t0, c0 = time.perf_counter(), time.process_time()
        n = max(self.settings.num_samples, self.settings.inception_samples)
        try:
            images, labels = generate(G, variant, n, self.settings.metric_seed, self.device)
        except MetricInputError as exc:
            return {"metrics": {}, "metrics_error": str(exc)}
        row = self.score_images(images, labels, variant.data.classes, variant.data.resolution)
        if self.settings.ppl_samples > 0 and not row.get("metrics_error"):
            self._score_smoothness(variant, G, row, strip_path)
        no_train = "ct_fmnist" in row.get("metrics_unavailable", {})
        if nearest_path is not None and not row.get("metrics_error") and not no_train:
            row["nearest"] = self._nearest(images, variant.data.classes, nearest_path)
        row["eval_seconds"] = round(time.perf_counter() - t0, 2)
        row["eval_cpu_seconds"] = round(time.process_time() - c0, 2)  # process CPU time
        return row

    def _nearest(
        self, images: torch.Tensor, classes: tuple[int, ...] | None, path: Path
    ) -> dict[str, Any]:
        """The nearest-training-image figure of the first samples (see :mod:`bench.nearest`)."""
        from bench.nearest import SHOWN, nearest_figure

        size = images.shape[-1]  # pixels compared at the samples' resolution (dcgan-64)
        train = self._part(DataOptions(classes=classes, resolution=size), "train")
        train_feats = self.copying_features(classes, "fmnist", size)[0]["features"]
        feats = extract(self.extractor, images[:SHOWN], self.settings.batch_size)["features"]
        shown = nearest_figure(images, feats, train.images, train_feats, path)
        return {"figure": str(path), **shown}

    def _score_smoothness(
        self, variant: Variant, G: nn.Module, row: dict[str, Any], strip_path: Path | None
    ) -> None:
        """Every generator family on ``G``: values, protocol section, unavailable reasons
        (remembered, so that a failed LPIPS download is not retried for every job)."""
        row.setdefault("metrics_unavailable", {})
        for family in families("generator"):
            ctx = GeneratorContext(
                G, variant, self.settings, self.extractor.model, self.extractor.weights_sha256,
                self.device, self._unavailable, strip_path,
            )  # fmt: skip
            result = family.compute(ctx)
            row["metrics"].update(result.values)
            row["protocol"][family.name] = result.protocol
            row["metrics_unavailable"].update(result.unavailable)
            self._unavailable.update(result.unavailable)
            row.update(result.row_fields)

    def score_images(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        classes: tuple[int, ...] | None = None,
        resolution: int = IMAGE_SIZE,
    ) -> dict[str, Any]:
        """Score uint8 images (N, C, H, W) against the test split restricted to ``classes``,
        its images brought to ``resolution`` as a generator's training data were
        (:func:`describe_split`; image files and arrays: 28, the data as published).

        The first ``num_samples`` images feed the evaluator metrics, the first
        ``inception_samples`` the Inception metrics. ``labels`` (the classes the images
        were generated for) add label accuracy and intra-class FID.
        """
        t0, c0 = time.perf_counter(), time.process_time()
        class_ids = classes if classes is not None else tuple(range(10))
        n_eval = self.settings.num_samples
        no_data: dict[str, str] = {}  # keys that need the data files, and why they are missing
        try:
            feats, ref_labels, desc = self.reference(classes, resolution)
            copying, copying_desc = None, None
            try:
                train, held, copying_desc = self.copying_features(classes, "fmnist", resolution)
                copying = (train, held)
            except DataNotFoundError as exc:  # an imported reference without the data files
                no_data["ct_fmnist"] = f"needs the training images: {exc}"
            values, notes = fmnist_metrics(
                self.extractor, images[:n_eval], None if labels is None else labels[:n_eval],
                feats, ref_labels, class_ids, self.settings, copying,
            )  # fmt: skip
        except EvaluatorUnavailable as exc:
            return {"metrics": {}, "metrics_error": f"evaluator unavailable: {exc}"}
        except MetricInputError as exc:  # e.g. too few samples: the training result stands
            return {"metrics": {}, "metrics_error": str(exc)}
        notes["num_samples"] = min(n_eval, len(images))
        if "copying" in notes:
            notes["copying"]["reference"] = copying_desc
        row: dict[str, Any] = {
            "metrics": values,
            "protocol": {"fmnist": protocol(self.extractor, self.settings, desc, notes)},
        }
        if labels is not None and self.settings.cas_samples > 0 and not no_data:
            self._score_labelled(images, labels, classes, row, resolution)
        elif labels is not None and self.settings.cas_samples > 0:
            no_data["cas"] = no_data["cas_real"] = "needs the training and test images"
        if no_data:
            row.setdefault("metrics_unavailable", {}).update(no_data)
        if self.settings.inception_samples > 0:
            row.setdefault("metrics_unavailable", {})
            try:
                self._score_inception(images, classes, row, resolution=resolution)
            except (InceptionUnavailable, MetricInputError) as exc:
                for key in group_keys("inception"):
                    row["metrics_unavailable"][key] = str(exc)
        row["eval_seconds"] = round(time.perf_counter() - t0, 2)
        row["eval_cpu_seconds"] = round(time.process_time() - c0, 2)  # process CPU time
        return row

    def _score_labelled(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        classes: tuple[int, ...] | None,
        row: dict[str, Any],
        resolution: int,
    ) -> None:
        """The ``images`` families (CAS) on conditional samples and their labels, against
        the real test and training images of ``classes``; notes into ``protocol.fmnist``."""
        from metrics.cas import ImagesContext

        opts = DataOptions(classes=classes, resolution=resolution)
        test, train = self._part(opts, "test"), self._part(opts, "train")
        class_ids = classes if classes is not None else tuple(range(10))
        ctx = ImagesContext(images, labels, test.images, test.labels, train.images,
                            train.labels, class_ids, self.settings, self.device)  # fmt: skip
        for family in families("images"):
            values, notes = family.compute(ctx)
            row["metrics"].update(values)
            row["protocol"]["fmnist"].update(notes)

    def score_raw_g(self, variant: Variant, G: nn.Module) -> dict[str, Any]:
        """The Inception metrics alone (no data-copying test) of a second generator of the
        same job, e.g. the raw G beside the G_ema a row scores: Lucic et al. score G itself.
        Same latents (the metric seed), sample count and reference as the row's Inception
        metrics; fields ``metrics``, ``protocol`` (with its ``inception`` section, as a
        row's), ``eval_seconds``, ``eval_cpu_seconds``, or ``error`` when the Inception or
        the samples are unusable."""
        t0, c0 = time.perf_counter(), time.process_time()
        n = self.settings.inception_samples
        row: dict[str, Any] = {"metrics": {}, "metrics_unavailable": {}, "protocol": {}}
        try:
            images, _ = generate(G, variant, n, self.settings.metric_seed, self.device)
            classes, resolution = variant.data.classes, variant.data.resolution
            self._score_inception(images, classes, row, copying=False, resolution=resolution)
        except (InceptionUnavailable, MetricInputError) as exc:
            return {"error": str(exc)}
        out = {"metrics": row["metrics"], "protocol": row["protocol"]}  # a row's shape
        out["eval_seconds"] = round(time.perf_counter() - t0, 2)
        out["eval_cpu_seconds"] = round(time.process_time() - c0, 2)
        return out

    def _score_inception(
        self,
        images: torch.Tensor,
        classes: tuple[int, ...] | None,
        row: dict[str, Any],
        copying: bool = True,
        resolution: int = IMAGE_SIZE,
    ) -> None:
        n = min(self.settings.inception_samples, len(images))
        feats, desc = self.inception_reference(classes, resolution)
        inc = self.inception
        pair, copying_desc = None, None
        wanted = copying and self.settings.copying_inception
        if wanted and "ct_fmnist" not in row["metrics_unavailable"]:
            train, held, copying_desc = self.copying_features(classes, "inception", resolution)
            pair = (train, held)
        values, notes = inception_metrics(inc.extractor, images[:n], feats, self.settings, pair)
        if "copying" in notes:
            notes["copying"]["reference"] = copying_desc
        row["metrics"].update(values)
        proto = protocol(inc.extractor, self.settings, desc, notes)
        proto["num_samples"] = n
        proto["weights_source"] = inc.weights.source
        proto["weights_standard"] = inc.weights.standard
        row["protocol"]["inception"] = proto
        if inc.is_unavailable:
            row["metrics_unavailable"]["is_inception"] = inc.is_unavailable
            row["metrics_unavailable"]["is_inception_std"] = inc.is_unavailable


def copying_split(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices into a reference split of ``n`` images: the held-out half the data-copying
    test compares against (its P_n), and the other half (the sanity ladder's ``held-out``
    rung, real images the test has never seen), both in ``randperm(seed)`` order."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n // 2], perm[n // 2 :]
