"""Published Fashion-MNIST FIDs of the Lucic et al. 2018 protocol, and a table that sets a
run's FID(inception) beside them.

The protocol (Lucic et al. 2018, "Are GANs Created Equal? A Large-Scale Study", NeurIPS):
20 epochs of 50,000 real images shown to D (1,000 kimg, as compare_gan v1 counts them), FID of
10,000 generated images against the 10,000 test images on TF-Inception pool3. Their networks
are InfoGAN-style and every number is the best setting of
a large hyper-parameter search, so a recipe here is compared with its loss family's best
case, not with the same network. The values are the papers' own (nothing here is computed);
a run's values are shown beside them only where its FID(inception) was made with the same
sample sizes and reference split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

LUCIC_SAMPLES = 10_000  # generated images, against the 10,000 test images


@dataclass(frozen=True)
class PublishedFID:
    """One published Fashion-MNIST FID: mean ± std over that paper's restarts."""

    model: str
    fid: float
    std: float
    source: str
    loss: str | None = None  # the loss of models.losses that is this model's family, if any


LUCIC_2018 = "Lucic et al. 2018, Table 2 (best hyper-parameters, mean ± std over restarts)"
PUBLISHED: tuple[PublishedFID, ...] = (
    PublishedFID("NS GAN", 26.5, 1.6, LUCIC_2018, loss="bce"),
    PublishedFID("WGAN GP", 24.5, 2.1, LUCIC_2018, loss="wgan-gp"),
    PublishedFID("WGAN", 21.5, 1.6, LUCIC_2018),
    PublishedFID("BEGAN", 22.9, 0.9, LUCIC_2018),
    PublishedFID("PA-GAN", 15.8, 1.1, "Zhang & Khoreva 2019 (PA-GAN), best known in this protocol"),
)

INTRO = (
    "FID(inception) of 10,000 generated vs the 10,000 test images on TF-Inception pool3, "
    "the protocol of Lucic et al. 2018 (20 epochs of 50,000 = 1,000 kimg; the kimg column is this "
    "run's budget), beside the published model of the same loss. The published values are "
    "quoted from the papers, not computed here."
)

PROTOCOL_NOTE = (
    "Protocol differences: Lucic et al. train InfoGAN-style networks (z of 64, batch 64) "
    "and report each model's best setting of a large hyper-parameter search; a row here is "
    "one of this suite's recipes with its own networks, z, batch and learning rates, as "
    "registered, without a search; and a row scores G_ema, the exponential moving average of "
    "G that every variant keeps (decay 0.999 unless its recipe says otherwise), where they "
    "score G itself: the `raw G` column is the raw generator's FID(inception) under the same "
    "protocol (the `lucic` profile scores it for every row set beside a published number; "
    "`bench score --network G` scores a checkpoint's). "
    "A variant is set beside the published model of its loss "
    "(non-saturating BCE: NS GAN; WGAN-GP: WGAN GP); hinge-loss and conditional recipes have "
    "no published counterpart here."
)


def published_for(loss: str | None, conditional: bool) -> PublishedFID | None:
    """The published model a recipe of this loss is set beside (None: none). Conditional
    recipes have no counterpart: the published models are unconditional."""
    if conditional or loss is None:
        return None
    return next((p for p in PUBLISHED if p.loss == loss), None)


def matches_protocol(row: Mapping) -> bool:
    """Whether ``row``'s FID(inception) used the protocol's sample sizes: 10,000 generated
    images against the 10,000 test images."""
    p = (row.get("protocol") or {}).get("inception") or {}
    ref = p.get("reference") or {}
    return (
        p.get("num_samples") == LUCIC_SAMPLES
        and ref.get("split") == "test"
        and ref.get("size") == LUCIC_SAMPLES
        and ref.get("classes") in (None, "all")
    )


def comparison(
    frame: pd.DataFrame,
    summary: pd.DataFrame,
    run: str,
    losses: Mapping[str, str],
    raw_g: Mapping[str, list[float]] | None = None,
) -> pd.DataFrame:
    """Per variant of ``run`` in ``losses`` (variant -> loss name; only unconditional
    variants whose rows all match the protocol belong there): our FID(inception) mean ± std
    [95% interval], the budget (the largest kimg of its rows in the tidy ``frame``), the raw
    G's FID(inception) where ``raw_g`` (variant -> one value per seed) has it, and the
    published model of the same loss with the difference of the means. Empty when no
    variant qualifies."""
    s = summary[(summary["run"] == run) & (summary["metric"] == "fid_inception")]
    kimg = frame[frame["run"] == run].groupby("variant")["kimg"].max()
    raw_g = raw_g or {}
    records = []
    for r in s.itertuples():
        if r.variant not in losses:
            continue
        pub = published_for(losses[r.variant], conditional=False)
        ours = f"{r.mean:.1f}"
        if r.n > 1 and not np.isnan(r.std):
            ours += f" ± {r.std:.1f} [{r.ci_low:.1f}, {r.ci_high:.1f}]"
        records.append(
            {
                "variant": r.variant,
                "loss": losses[r.variant],
                "kimg": f"{kimg.get(r.variant, float('nan')):g}",
                "seeds": int(r.n),
                "FID(inception) here": ours,
                **({"raw G": _mean_std(raw_g.get(r.variant, []))} if raw_g else {}),
                "published": pub.model if pub else "–",
                "published FID": f"{pub.fid:.1f} ± {pub.std:.1f}" if pub else "–",
                "here - published": f"{r.mean - pub.fid:+.1f}" if pub else "–",
            }
        )
    return pd.DataFrame.from_records(records).set_index("variant") if records else pd.DataFrame()


def _mean_std(values: list[float]) -> str:
    """ "mean ± std (n)" of the raw G's per-seed FIDs ("–" for none)."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.1f} (1 seed)"
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f} ({len(values)} seeds)"


def references() -> pd.DataFrame:
    """Every published number, with its source."""
    return pd.DataFrame(
        [
            {"model": p.model, "FID": f"{p.fid:.1f} ± {p.std:.1f}", "source": p.source}
            for p in PUBLISHED
        ]
    ).set_index("model")
