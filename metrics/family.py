"""What a metric family is: its keys, the pass it reads, and how it computes them.

A family is one module (``metrics/fid.py``, ``metrics/kid.py``, ...) that declares its
:class:`MetricKey` s and a ``compute`` function, and is listed once in
:data:`metrics.keys.FAMILY_MODULES`. Two kinds of pass feed the families:

- ``features``: one feature pass of an extractor (the Fashion-MNIST evaluator or the
  Inception) over the generated images, shared by every family; ``compute`` gets a
  :class:`FeatureContext` and returns ``(values, notes)``, the notes going into that
  extractor's protocol section of the row.
- ``generator``: families that must call the generator themselves (path lengths, latent
  paths); ``compute`` gets a :class:`GeneratorContext` and returns a :class:`GeneratorResult`.

This module imports nothing heavy (torch only for type checking), so reports can read the
registry without torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from models.registry import Variant


@dataclass(frozen=True)
class EvalSettings:
    """How the metrics are computed; recorded with every result."""

    num_samples: int  # generated samples scored
    metric_seed: int = 2020  # latents/labels and metric subsampling; independent of training
    batch_size: int = 500  # feature-extraction batch; results do not depend on it
    isc_splits: int = 10  # the Inception Score convention
    kid_subsets: int = 100  # torch-fidelity's defaults
    kid_subset_size: int = 1000  # lowered to the sample count when that is smaller (recorded)
    prc_neighborhood: int = 3  # k of the k-NN manifolds (Kynkaanniemi et al. 2019)
    dnc_neighborhood: int = 5  # k of density/coverage (Naeem et al. 2020 recommend 5)
    inception_samples: int = 0  # generated and reference images for the Inception metrics; 0 off
    # Inception batch on the CPU: 8 ran 1.34x the img/s of 64 on 2 cores (smaller 299x299
    # activations stay in cache; `bench perf-metrics --inception-batches`), features
    # bit-identical; a GPU raises it to 500 (bench.scoring.Scorer)
    inception_batch_size: int = 8
    ppl_samples: int = 0  # latent pairs for the perceptual path length; 0 skips smoothness
    copying_cells: int = 20  # k-means cells of the data-copying test (Meehan et al. 2020)
    copying_min_cell: int = 20  # generated samples a cell needs to count in C_T
    # The copying test on Inception features too: its T is every training image of the
    # classes, 60k Inception passes once per machine (cached); off unless asked for.
    copying_inception: bool = False
    cas_samples: int = 0  # generated samples CAS trains on (conditional variants); 0: off
    cas_epochs: int = 5  # epochs of the CAS classifier, on generated and on real images


# Metric groups and the protocol section of a row that describes how each group was made.
GROUPS: dict[str, str] = {
    "fmnist": "fmnist",  # the shipped Fashion-MNIST evaluator's features
    "conditional": "fmnist",  # the evaluator on conditional samples and their labels
    "inception": "inception",  # TF-Inception pool3 and logits
    "smoothness": "smoothness",  # path lengths and latent paths of the generator
}
EXTRACTORS = ("fmnist", "inception")  # feature passes, named as the keys' suffixes


class MetricInputError(ValueError):
    """Inputs that cannot give a meaningful metric (too few samples, wrong shape or range)."""


@dataclass(frozen=True)
class MetricKey:
    """One reported number.

    Attributes:
        name: the key in a row's ``metrics``.
        higher_is_better: the direction tables rank and the gate checks in.
        description: one line for tables and ``bench score``.
        group: one of :data:`GROUPS`.
        headline: a column of the results table (in group, then registration, order).
        spread_of: for a ``*_std`` key, the key whose spread it is (shown with it, not alone).
        protocol: the row's protocol section describing it (default: its group's).
        unranked: why tables must not rank it (a direction the sanity ladder contradicts);
            empty for a ranked metric. An unranked key is shown, never a headline column.
    """

    name: str
    higher_is_better: bool
    description: str
    group: str
    headline: bool = False
    spread_of: str | None = None
    protocol: str = field(default="")
    unranked: str = ""

    def __post_init__(self) -> None:
        if self.headline and self.unranked:
            raise ValueError(f"metric key {self.name!r}: a headline column must be ranked")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"metric key {self.name!r}: lower-case letters, digits, '_'")
        if self.group not in GROUPS:
            raise ValueError(f"metric key {self.name!r}: group {self.group!r} not in {GROUPS}")
        if not self.protocol:
            object.__setattr__(self, "protocol", GROUPS[self.group])

    @property
    def ranked(self) -> bool:
        """Whether tables rank and star it in its direction."""
        return not self.unranked


@dataclass(frozen=True)
class FeatureContext:
    """One extractor's feature pass over generated images, and its reference.

    ``gen`` and ``ref`` map feature names to tensors: ``features`` always (the evaluator's
    128-d penultimate layer or Inception pool3), ``logits`` when the extractor has them.
    ``gen_labels`` are the classes conditional samples were generated for (else None);
    ``ref_labels`` the reference's labels when known; ``class_ids`` the variant's classes.
    ``train`` and ``held_out`` are the same extractor's features of training images and of
    held-out real images disjoint from them (the data-copying test's T and P_n), when the
    scorer provides them.
    """

    extractor: str
    gen: Mapping[str, torch.Tensor]
    ref: Mapping[str, torch.Tensor]
    settings: EvalSettings
    gen_labels: torch.Tensor | None = None
    ref_labels: torch.Tensor | None = None
    class_ids: tuple[int, ...] = tuple(range(10))
    train: Mapping[str, torch.Tensor] | None = None
    held_out: Mapping[str, torch.Tensor] | None = None

    def key(self, stem: str) -> str:
        """``stem`` with this pass's suffix: ``key("fid")`` is ``fid_fmnist`` or
        ``fid_inception``."""
        return f"{stem}_{self.extractor}"


@dataclass(frozen=True)
class GeneratorContext:
    """A generator to measure directly, with the evaluator the smoothness metrics use.

    ``unavailable`` carries reasons already known for keys of this family (an LPIPS
    download that failed once is not retried for every job); ``strip_path``, when given,
    receives the latent-path image strip.
    """

    G: nn.Module
    variant: Variant
    settings: EvalSettings
    evaluator: nn.Module
    evaluator_sha256: str
    device: str = "cpu"
    unavailable: Mapping[str, str] = field(default_factory=dict)
    strip_path: Path | None = None


@dataclass
class GeneratorResult:
    """What a generator family adds to a row: values, its protocol section, the reasons
    for keys it could not compute, and further row fields (e.g. ``interpolation``)."""

    values: dict[str, float | None]
    protocol: dict[str, Any]
    unavailable: dict[str, str] = field(default_factory=dict)
    row_fields: dict[str, Any] = field(default_factory=dict)


FeatureCompute = Callable[[FeatureContext], tuple[dict[str, float | None], dict[str, Any]]]
GeneratorCompute = Callable[[GeneratorContext], GeneratorResult]


@dataclass(frozen=True)
class Family:
    """Metrics computed together from one pass.

    Attributes:
        name: short name (module name).
        keys: every key the family may report; ``compute`` must return no other.
        compute: :data:`FeatureCompute` for ``kind == "features"``,
            :data:`GeneratorCompute` for ``generator``, and for ``images`` a function of
            labelled images (:class:`metrics.cas.ImagesContext`) returning values and notes.
        kind: ``features``, ``generator`` or ``images``.
        needs: feature names the family reads; on a pass without them (Inception without
            logits) the family is skipped.
        extractors: the feature passes the family runs on.
        needs_train: the family reads the pass's training and held-out features
            (:attr:`FeatureContext.train`); skipped on a pass without them.
    """

    name: str
    keys: tuple[MetricKey, ...]
    compute: Callable[[Any], Any]
    kind: str = "features"
    needs: tuple[str, ...] = ("features",)
    extractors: tuple[str, ...] = EXTRACTORS
    needs_train: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("features", "generator", "images"):
            raise ValueError(f"family {self.name!r}: kind {self.kind!r}")
        unknown = set(self.extractors) - set(EXTRACTORS)
        if unknown:
            raise ValueError(f"family {self.name!r}: unknown extractors {sorted(unknown)}")

    def runs_on(self, ctx: FeatureContext) -> bool:
        """Whether this feature family applies to ``ctx``'s pass."""
        if self.needs_train and (ctx.train is None or ctx.held_out is None):
            return False
        return ctx.extractor in self.extractors and all(n in ctx.gen for n in self.needs)
