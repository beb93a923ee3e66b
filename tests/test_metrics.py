"""Metric math: invariants, then equality with independent NumPy/SciPy computations, then
semantics on synthetic features; the evaluator's batch-size independence and input handling."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from metrics.dnc import density_coverage, reference_radii
from metrics.evaluator import FMNISTEvaluator
from metrics.family import EvalSettings, FeatureContext, MetricInputError
from metrics.fid import _rank_clip, fid
from metrics.images import check_images, to_uint8
from metrics.isc import inception_score
from metrics.keys import METRICS
from metrics.prc import precision_recall
from metrics.suite import feature_metrics


def gaussian(n: int, dim: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    g = np.random.default_rng(seed)
    return torch.from_numpy((g.standard_normal((n, dim)) * scale + shift).astype(np.float32))


def distribution_metrics(
    gen: torch.Tensor, ref: torch.Tensor, settings: EvalSettings
) -> tuple[dict, dict]:
    """Every registered feature family that needs only features, on one pair of sets."""
    ctx = FeatureContext("fmnist", {"features": gen}, {"features": ref}, settings)
    return feature_metrics(ctx)


def numpy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def numpy_kid(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel, on the full sets (one 'subset')."""
    d = a.shape[1]

    def k(x, y):
        return (x @ y.T / d + 1) ** 3

    m, n = len(a), len(b)
    kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )


def numpy_is(logits: np.ndarray) -> float:
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    py = p.mean(0, keepdims=True)
    return float(np.exp((p * (np.log(p) - np.log(py))).sum(1).mean()))


def test_every_key_declares_direction() -> None:
    issue_keys = {
        "is_inception", "is_inception_std", "fid_inception", "kid_inception",
        "kid_inception_std", "precision_inception", "recall_inception", "is_fmnist",
        "fid_fmnist", "kid_fmnist", "precision_fmnist", "recall_fmnist", "class_coverage",
        "ppl", "interp_discontinuity", "intra_fid_fmnist", "label_accuracy",
    }  # fmt: skip
    assert issue_keys <= set(METRICS)
    assert METRICS["is_fmnist"].higher_is_better and not METRICS["fid_fmnist"].higher_is_better
    assert METRICS["recall_inception"].higher_is_better
    assert not METRICS["kid_fmnist"].higher_is_better


def test_fid_of_identical_sets_is_zero() -> None:
    x = gaussian(500, 16, 0)
    assert abs(fid(x, x)) < 1e-9
    few = gaussian(40, 128, 1)  # N below the dimension: singular covariances
    scale = float(few.double().var(0).sum())
    assert abs(fid(few, few)) < 1e-9 * scale


def test_fid_matches_a_float64_reference() -> None:
    """On float32 features (as extractors give them), FID equals SciPy's float64 sqrtm
    formula to 1e-9 relative, also at the 128-d evaluator width."""
    for a, b in [
        (gaussian(800, 12, 1), gaussian(700, 12, 2, shift=0.3, scale=1.2)),
        (gaussian(3000, 128, 5), gaussian(2500, 128, 6, shift=0.05, scale=1.1)),
    ]:
        ref = numpy_fid(a.double().numpy(), b.double().numpy())
        assert fid(a, b) == pytest.approx(ref, rel=1e-9)


def test_fid_with_fewer_samples_than_dimensions_equals_the_full_route() -> None:
    """Below the dimension FID takes the N x N route; it equals SciPy's sqrtm formula and the
    D x D eigendecomposition, whichever side is the small one."""
    import numpy as np

    def full_route(a, b):  # the D x D eigendecompositions, rank-clipped as in metrics/fid.py
        a, b = a.double().numpy(), b.double().numpy()
        s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        w, v = np.linalg.eigh(s1)
        root = (v * np.sqrt(_rank_clip(w))) @ v.T
        tr = np.sqrt(_rank_clip(np.linalg.eigvalsh(root @ s2 @ root))).sum()
        d = a.mean(0) - b.mean(0)
        return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * tr)

    few, many = gaussian(64, 256, 7, scale=1.3), gaussian(2000, 256, 8, shift=0.2)
    ref = numpy_fid(few.double().numpy(), many.double().numpy())
    assert fid(few, many) == pytest.approx(ref, rel=1e-6)
    assert fid(few, many) == pytest.approx(full_route(few, many), rel=1e-9)
    assert fid(many, few) == pytest.approx(full_route(many, few), rel=1e-9)
    both_few = gaussian(50, 256, 9), gaussian(60, 256, 10, shift=0.1)
    assert fid(*both_few) == pytest.approx(full_route(*both_few), rel=1e-9)


def test_kid_matches_a_float64_reference_on_one_full_subset() -> None:
    a, b = gaussian(300, 8, 3), gaussian(300, 8, 4, shift=0.5)
    settings = EvalSettings(num_samples=300, kid_subsets=1, kid_subset_size=300)
    out, notes = distribution_metrics(a, b, settings)
    assert notes["kid_subset_size"] == 300
    assert out["kid_fmnist"] == pytest.approx(
        numpy_kid(a.double().numpy(), b.double().numpy()), rel=1e-9
    )
    assert out["kid_fmnist_std"] is None  # every subset is both whole sets: no spread
    assert "whole side" in notes["kid_std"]


def test_kid_subset_size_is_lowered_and_recorded() -> None:
    a, b = gaussian(120, 8, 3), gaussian(90, 8, 4)
    _, notes = distribution_metrics(a, b, EvalSettings(num_samples=120))
    assert notes["kid_subset_size"] == 90
    out, notes = distribution_metrics(
        gaussian(400, 8, 3), gaussian(400, 8, 4), EvalSettings(400, kid_subset_size=100)
    )
    assert out["kid_fmnist_std"] > 0 and "kid_std" not in notes  # subsets resample


def test_inception_score_matches_numpy() -> None:
    logits = gaussian(1000, 10, 5, scale=3.0)
    settings = EvalSettings(num_samples=1000, isc_splits=1)
    mean, std = inception_score(logits, settings)
    assert mean == pytest.approx(numpy_is(logits.double().numpy()), rel=1e-6)
    assert std == 0.0
    confident = torch.eye(10).repeat(100, 1) * 50  # one-hot, uniform marginal: IS -> 10
    assert inception_score(confident, settings)[0] == pytest.approx(10.0, rel=1e-6)
    with pytest.raises(MetricInputError, match="10 splits"):
        inception_score(logits[:5], EvalSettings(num_samples=5))


def test_precision_recall_direction_on_clusters() -> None:
    real = torch.cat([gaussian(200, 4, 6, shift=s) for s in (0.0, 10.0)])
    collapsed = gaussian(400, 4, 7, shift=0.0)  # only one of the two modes
    scattered = gaussian(400, 4, 8, scale=15.0)  # covers everything, mostly off-manifold
    s = EvalSettings(num_samples=400)
    m_col, _ = distribution_metrics(collapsed, real, s)
    m_sca, _ = distribution_metrics(scattered, real, s)
    # sharp but mode-dropping
    assert m_col["precision_fmnist"] > 0.9 and m_col["recall_fmnist"] < 0.6
    assert m_sca["precision_fmnist"] < m_col["precision_fmnist"]
    assert m_sca["recall_fmnist"] > m_col["recall_fmnist"]


def test_evaluator_features_do_not_depend_on_batch_size() -> None:
    torch.manual_seed(0)
    model = FMNISTEvaluator().eval()
    x = torch.randint(0, 256, (37, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        full = model(x)[1]
        parts = torch.cat([model(x[i : i + 5])[1] for i in range(0, 37, 5)])
    assert torch.allclose(full, parts, atol=1e-5)


def test_evaluator_accepts_rgb_and_64px() -> None:
    model = FMNISTEvaluator().eval()
    gray = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        a = model(gray)[0]
        b = model(gray.repeat(1, 3, 1, 1))[0]  # RGB of the same gray image
        c = model(torch.nn.functional.interpolate(gray.float(), 64).round().to(torch.uint8))[0]
    assert torch.allclose(a, b, atol=1e-5)
    assert c.shape == (4, 10)


def test_to_uint8_and_image_checks() -> None:
    assert to_uint8(torch.tensor([-1.0, 0.0, 1.0, 2.0])).tolist() == [0, 128, 255, 255]
    assert to_uint8(torch.tensor([0.0, 1.0]), 0.0, 1.0).tolist() == [0, 255]
    with pytest.raises(MetricInputError, match="uint8"):
        check_images(torch.zeros(2, 1, 28, 28), "x")
    with pytest.raises(MetricInputError, match="shape"):
        check_images(torch.zeros(2, 28, 28, dtype=torch.uint8), "x")
    with pytest.raises(MetricInputError, match="no images"):
        check_images(torch.zeros(0, 1, 28, 28, dtype=torch.uint8), "x")


def test_weights_file_hash_depends_only_on_the_weights(tmp_path) -> None:
    from metrics.common import file_digest
    from metrics.evaluator import save_evaluator

    torch.manual_seed(0)
    model = FMNISTEvaluator()
    a = save_evaluator(model, tmp_path / "a.pt")
    b = save_evaluator(model, tmp_path / "sub" / "other-name.pt")
    assert a == b == file_digest(tmp_path / "a.pt")


def test_shipped_weights_match_their_pinned_hash() -> None:
    from metrics.evaluator import EVALUATOR_SHA256, WEIGHTS_PATH, load_evaluator

    _, digest = load_evaluator()
    assert WEIGHTS_PATH.stat().st_size <= 2_000_000
    assert digest == EVALUATOR_SHA256


def test_substituted_weights_are_refused(tmp_path, monkeypatch) -> None:
    from metrics import evaluator as ev

    fake = tmp_path / "w.pt"
    ev.save_evaluator(FMNISTEvaluator(), fake)
    monkeypatch.setattr(ev, "WEIGHTS_PATH", fake)
    with pytest.raises(ev.EvaluatorUnavailable, match="expects"):
        ev.load_evaluator()
    monkeypatch.setattr(ev, "WEIGHTS_PATH", tmp_path / "missing.pt")
    with pytest.raises(ev.EvaluatorUnavailable, match="bench evaluator train"):
        ev.load_evaluator()


def numpy_density_coverage(gen: np.ndarray, ref: np.ndarray, k: int) -> tuple[float, float]:
    """Naeem et al.'s definitions written out with full distance matrices (prdc's way)."""
    rr = np.sqrt(((ref[:, None] - ref[None]) ** 2).sum(-1))
    radii = np.partition(rr, k, axis=1)[:, k]  # index 0 is the sample itself
    rg = np.sqrt(((ref[:, None] - gen[None]) ** 2).sum(-1))  # (M, N)
    density = (rg < radii[:, None]).sum(0).mean() / k
    coverage = (rg.min(1) < radii).mean()
    return float(density), float(coverage)


def test_density_coverage_match_numpy_and_their_expected_values() -> None:
    a, b = gaussian(400, 6, 11), gaussian(300, 6, 12, shift=0.4)
    for k in (1, 5):
        ours = density_coverage(a, b, k)
        ref = numpy_density_coverage(a.double().numpy(), b.double().numpy(), k)
        assert ours == pytest.approx(ref, rel=1e-12)
    # Same distribution: density ~1; coverage ~ 1 - 2^-k (Naeem et al., section 4).
    d, c = density_coverage(gaussian(4000, 8, 13), gaussian(4000, 8, 14), 5)
    assert d == pytest.approx(1.0, abs=0.08) and c == pytest.approx(1 - 0.5**5, abs=0.03)


def test_density_is_not_fooled_by_an_outlier_where_precision_is() -> None:
    """The paper's failure case: one far reference outlier gets a huge k-NN ball, so samples
    scattered around it look precise; density counts balls (1 of k there) and stays low."""
    outlier = torch.full((1, 4), 20.0)
    real = torch.cat([gaussian(999, 4, 15), outlier])
    near_outlier = outlier + gaussian(1000, 4, 17, scale=4.0)
    s = EvalSettings(num_samples=1000)
    good, _ = distribution_metrics(gaussian(1000, 4, 18), real, s)
    bad, _ = distribution_metrics(near_outlier, real, s)
    assert bad["precision_fmnist"] > 0.9 * good["precision_fmnist"]  # fooled
    assert bad["density_fmnist"] < 0.25 * good["density_fmnist"]  # not fooled


def test_reference_radii_are_reused_only_for_the_same_reference() -> None:
    ref = gaussian(300, 6, 21)
    first = reference_radii(ref, 5)
    assert reference_radii(ref.clone(), 5) is first  # same content: computed once
    perm = ref[torch.randperm(300, generator=torch.Generator().manual_seed(0))]
    assert reference_radii(perm, 5) is not first  # rows reordered: radii reordered
    changed = ref.clone()
    changed[7, 2] += 1e-3
    assert not torch.equal(reference_radii(changed, 5), first)
    assert not torch.equal(reference_radii(ref, 3), first)


def numpy_precision_recall(gen: np.ndarray, ref: np.ndarray, k: int) -> tuple[float, float]:
    d = lambda a, b: np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))  # noqa: E731
    gen_r = np.sort(d(gen, gen), axis=1)[:, k]  # column 0 is the sample itself
    ref_r = np.sort(d(ref, ref), axis=1)[:, k]
    gen_to_ref = d(gen, ref)
    precision = (gen_to_ref <= ref_r[None]).any(1).mean()
    ref_to_gen = gen_to_ref.T
    recall = (ref_to_gen <= gen_r[None]).any(1).mean()
    return float(precision), float(recall)


def test_precision_recall_equal_torch_fidelity_and_numpy_with_the_reference_memo() -> None:
    """Bitwise torch-fidelity's own result, first call and memo hit alike; NumPy agrees."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    gen, ref = gaussian(400, 8, 31, shift=0.3), gaussian(600, 8, 32)
    tf = prc_features_to_metric(gen, ref, prc_neighborhood=3, prc_batch_size=10000,
                                save_cpu_ram=False, verbose=False)  # fmt: skip
    first = precision_recall(gen, ref, 3)
    assert first == (tf["precision"], tf["recall"])
    assert precision_recall(gen, ref.clone(), 3) == first  # memo hit: same numbers
    assert first == pytest.approx(
        numpy_precision_recall(gen.numpy(), ref.numpy(), 3), abs=1e-6
    )  # float32 means
    assert precision_recall(gen, ref, 5) != first  # k is part of the key
    with pytest.raises(MetricInputError, match="k=3"):
        precision_recall(gen[:3], ref, 3)


def test_precision_recall_in_row_blocks_equals_torch_fidelity(monkeypatch) -> None:
    """With blocks smaller than the sets (as 50,000 samples against BLOCK = 10,000 are), the
    block-at-a-time computation is still bitwise torch-fidelity's full-matrix result."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    import metrics.prc as prc

    monkeypatch.setattr(prc, "BLOCK", 97)
    gen, ref = gaussian(450, 8, 41, shift=0.2), gaussian(380, 8, 42)
    tf = prc_features_to_metric(gen, ref, prc_neighborhood=3, prc_batch_size=97,
                                save_cpu_ram=False, verbose=False)  # fmt: skip
    assert prc.precision_recall(gen, ref.clone() + 0.0, 3) == (tf["precision"], tf["recall"])
