"""Smoothness of the generator's latent space, measured on the generator itself: perceptual
path length (torch-fidelity's, with the evaluator's features as the distance, and LPIPS where
its weights can be had) and the discontinuity of images along latent paths
(:mod:`metrics.interp` has the machinery)."""

from __future__ import annotations

from metrics.family import Family, GeneratorContext, GeneratorResult, MetricKey


def compute(ctx: GeneratorContext) -> GeneratorResult:
    """PPL (evaluator distance; LPIPS unless known unavailable), the latent-path
    discontinuity and class changes, the strip image when ``ctx.strip_path`` is set."""
    from metrics.interp import (
        EVALUATOR_SIMILARITY,
        LPIPS_SIMILARITY,
        InterpSettings,
        karras_ppl,
        latent_paths,
        ppl,
        save_strip,
    )

    s = InterpSettings(ppl_samples=ctx.settings.ppl_samples, seed=ctx.settings.metric_seed)
    out = ppl(ctx.G, ctx.variant, s, EVALUATOR_SIMILARITY, ctx.device)
    karras = karras_ppl(ctx.G, ctx.variant, s, lambda x: ctx.evaluator(x)[1], ctx.device)
    paths = latent_paths(ctx.G, ctx.variant, ctx.evaluator, s, ctx.device)
    values: dict[str, float | None] = {
        "ppl": out["mean"],
        "ppl_std": out["std"],
        "ppl_karras": karras["ppl_karras"],
        "ppl_relative": karras["ppl_relative"],
        "interp_discontinuity": paths["interp_discontinuity"],
    }
    interpolation = {
        "class_changes": paths["class_changes"],
        "class_changes_mean": paths["class_changes_mean"],
        "still_paths": paths["still_paths"],
    }
    if ctx.strip_path is not None:
        save_strip(paths["images"], s.paths, ctx.strip_path)
        interpolation["strip"] = str(ctx.strip_path)
    protocol = {
        "definition": "ppl: torch-fidelity calculate_ppl (lerp, t = 0, 1st/99th percentile "
        "filter); ppl_karras/ppl_relative: see karras",
        "similarity": EVALUATOR_SIMILARITY,
        "weights_sha256": ctx.evaluator_sha256,
        "samples": s.ppl_samples,
        "kept_after_percentile_filter": out["kept"],
        "epsilon": s.ppl_epsilon,
        "interpolation": s.ppl_interp,
        "percentiles": list(s.ppl_percentiles),
        "karras": {
            "definition": "Z-space PPL of Karras et al. 2019: slerp, t ~ U[0, 1), 1st/99th "
            "percentile filter; ppl_relative = its mean / mean endpoint distance",
            "kept_after_percentile_filter": karras["kept"],
            "degenerate": karras["degenerate"],
        },
        "latent_paths": {"paths": s.paths, "steps": s.steps, "interpolation": "slerp"},
        "metric_seed": s.seed,
    }
    unavailable = {k: v for k, v in ctx.unavailable.items() if k == "ppl_lpips"}
    if not unavailable:
        try:
            values["ppl_lpips"] = ppl(ctx.G, ctx.variant, s, LPIPS_SIMILARITY, ctx.device)["mean"]
        except Exception as exc:  # LPIPS weights are a download: absent offline
            reason = f"LPIPS-VGG16 unavailable ({type(exc).__name__}: {exc})"[:300]
            unavailable["ppl_lpips"] = reason
    return GeneratorResult(values, protocol, unavailable, {"interpolation": interpolation})


SCALE_UNRANKED = ("scale-dependent: a constant generator scores 0, the best value; "
                  "ppl_relative is the ranked path length")  # fmt: skip

FAMILY = Family(
    "smoothness",
    (
        MetricKey("ppl", False, "perceptual path length, torch-fidelity's definition (lerp, "
                  "t = 0), evaluator-feature distance", "smoothness", unranked=SCALE_UNRANKED),
        MetricKey("ppl_std", False, "std of the per-pair path lengths behind ppl",
                  "smoothness", spread_of="ppl"),
        MetricKey("ppl_karras", False, "perceptual path length, Karras et al.'s Z-space "
                  "definition (slerp, t ~ U[0, 1)), evaluator-feature distance", "smoothness",
                  unranked=SCALE_UNRANKED),
        MetricKey("ppl_relative", False, "ppl_karras / mean endpoint distance: 1 for a path "
                  "at constant speed in feature space; none for a constant generator",
                  "smoothness", headline=True),
        MetricKey("ppl_lpips", False, "perceptual path length with LPIPS-VGG16 (needs its "
                  "weights)", "smoothness", unranked=SCALE_UNRANKED),
        MetricKey("interp_discontinuity", False, "max step / mean step along latent paths "
                  "(paths whose images never change left out)", "smoothness", headline=True,
                  protocol="latent_paths"),
    ),
    compute,
    kind="generator",
    needs=(),
    extractors=(),
)  # fmt: skip
