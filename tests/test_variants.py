"""The common test over every registered variant, and the registry's validation."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest
import torch

import models
from bench.data import Dataset, random_dataset
from bench.harness import Trainer, TrainSettings
from models.registry import UnknownVariantError, Variant, _validate, check_contract, get_variant

# The exact list: adding or renaming a variant must be a deliberate, reviewed change.
EXPECTED = [
    "dcgan",
    "dcgan-small",
    "dcgan-64",
    "dcgan-upsample",
    "cgan-mlp",
    "cgan-mlp-2class",
    "wgan-gp",
    "cdcgan",
    "sngan",
    "sngan-ema",
    "sngan-ema-diffaug",
]
CONDITIONAL = [n for n in EXPECTED if get_variant(n).conditional]
ALL = models.variant_names()  # with any installed plugin's: the contract holds for them too


def test_registered_names_exactly() -> None:
    builtin = [n for n in models.variant_names() if get_variant(n).origin is None]
    assert builtin == EXPECTED


@pytest.mark.parametrize("name", ALL)
def test_contract(name: str) -> None:
    """What models.registry.check_contract asks of every variant, plugins included."""
    before = torch.random.get_rng_state()
    check_contract(get_variant(name))
    assert torch.equal(torch.random.get_rng_state(), before)  # the check draws nothing global


def fake_data(v: Variant) -> Dataset:
    """Random uint8 images of the variant's shape, two iterations' worth."""
    return random_dataset(
        v.batch_size * v.build_loss().n_critic * 2, v.resolution, v.data.class_ids
    )


@pytest.mark.parametrize("name", ALL)
def test_shapes_and_range(name: str) -> None:
    v = get_variant(name)
    G, D = v.build(0)
    G.eval()
    z, y = v.sample_latents(6, torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = G(z, y)
        assert x.shape == (6, 1, v.resolution, v.resolution)
        lo, hi = v.data.value_range
        assert x.min() >= lo and x.max() <= hi
        assert D(x, y).shape == (6,)


@pytest.mark.parametrize("name", ALL)
def test_one_step_changes_both_networks(name: str, tmp_path: Path) -> None:
    v = get_variant(name)
    tr = Trainer(v, fake_data(v), TrainSettings(kimg=1, progress=False), tmp_path)
    g0 = [p.detach().clone() for p in tr.G.parameters()]
    d0 = [p.detach().clone() for p in tr.D.parameters()]
    e0 = [p.detach().clone() for p in tr.G_ema.parameters()]
    stats = tr.train_step()
    assert all(torch.isfinite(torch.tensor(list(stats.values()))))

    def changed(old: list[torch.Tensor], new) -> bool:
        return any(not torch.equal(a, b) for a, b in zip(old, new, strict=True))

    assert changed(g0, tr.G.parameters())
    assert changed(d0, tr.D.parameters())
    assert changed(e0, tr.G_ema.parameters())


@pytest.mark.parametrize("name", ALL)
def test_state_dict_round_trip(name: str) -> None:
    v = get_variant(name)
    G, D = v.build(0)
    G2, D2 = v.build(1)
    G2.load_state_dict(G.state_dict())
    D2.load_state_dict(D.state_dict())
    for m in (G, D, G2, D2):
        m.eval()
    z, y = v.sample_latents(4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(G(z, y), G2(z, y))
        x = G(z, y)
        assert torch.equal(D(x, y), D2(x, y))


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_batch(name: str, tmp_path: Path) -> None:
    v = get_variant(name)
    data = fake_data(v)

    def first_batch(seed: int, sub: str) -> tuple[torch.Tensor, torch.Tensor]:
        tr = Trainer(v, data, TrainSettings(kimg=1, seed=seed, progress=False), tmp_path / sub)
        z, y = v.sample_latents(5, tr.noise)
        with torch.no_grad():
            return tr.sampler.indices(0), tr.G.eval()(z, y)

    (ia, xa), (ib, xb), (ic, xc) = first_batch(3, "a"), first_batch(3, "b"), first_batch(4, "c")
    assert torch.equal(ia, ib) and torch.equal(xa, xb)
    assert not torch.equal(ia, ic) and not torch.equal(xa, xc)


@pytest.mark.parametrize("name", ALL)
def test_to_dict_is_json_ready(name: str) -> None:
    import json

    v = get_variant(name)
    d = v.to_dict()
    assert json.loads(json.dumps(d))["name"] == name
    if v.origin is None:
        assert d["seed_doc"] in {"000", "001", "002", "003", "004", "beyond"}


def test_unknown_variant_lists_names() -> None:
    with pytest.raises(UnknownVariantError, match="registered: dcgan, dcgan-small, dcgan-64"):
        get_variant("nope")


def test_conditional_variants_are_the_expected_ones() -> None:
    assert CONDITIONAL == ["cgan-mlp", "cgan-mlp-2class", "cdcgan"]


@pytest.mark.parametrize("name", CONDITIONAL)
def test_conditional_output_depends_on_label(name: str, tmp_path: Path) -> None:
    v = get_variant(name)
    # One training step: conditional batch norm starts class-neutral (scale 1, shift 0).
    tr = Trainer(v, fake_data(v), TrainSettings(kimg=1, progress=False), tmp_path)
    tr.train_step()
    G = tr.G.eval()
    z = torch.randn(1, v.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outs = [G(z, torch.tensor([c])) for c in v.data.class_ids]
    for a, b in itertools.pairwise(outs):
        assert (a - b).abs().max() > 1e-4  # same noise, other class -> other image


def test_two_class_variant_never_sees_other_classes(synthetic_dir: Path, tmp_path: Path) -> None:
    from bench.data import load_part

    v = get_variant("cgan-mlp-2class")
    data = load_part(v.data, "train", synthetic_dir)
    assert set(data.labels.tolist()) == {0, 1}
    assert len(data) == round(0.8 * 128)  # 80% of the two classes' 128 synthetic images
    tr = Trainer(v, data, TrainSettings(kimg=1, progress=False), tmp_path)
    seen: set[int] = set()
    for _ in range(50):
        _, y = v.sample_latents(64, tr.noise)
        seen |= set(y.tolist())
    assert seen == {0, 1}
    images, nrow = tr.sample_grid()
    assert images.shape[0] == 2 * nrow  # one row per class


def test_seed_faithful_option_of_wgan_gp() -> None:
    v = get_variant("wgan-gp")
    assert v.data.fraction == 1.0  # fair default: the full training set
    assert v.as_seed_trained().data.fraction == 0.5  # seed 004: a random half
    assert get_variant("dcgan").as_seed_trained() is get_variant("dcgan")


def test_capacity_study_pair_differs_only_in_width() -> None:
    a, b = get_variant("dcgan").to_dict(), get_variant("dcgan-small").to_dict()
    diff = {k for k in a if a[k] != b[k]}
    assert diff == {"name", "summary", "notes", "arch"}  # the descriptions say how they differ
    assert (a["arch"]["ngf"], b["arch"]["ngf"]) == (64, 32)
    assert {k for k in a["arch"] if a["arch"][k] != b["arch"][k]} == {"ngf", "ndf"}


@pytest.mark.parametrize(
    ("name", "change", "needle"),
    [
        ("Bad_Name", {}, "must match"),
        ("dcgan", {}, "already registered"),
        ("fresh", {"loss": "nope"}, "unknown loss"),
        ("fresh", {"loss_kwargs": {"unknown_kw": 1}}, "unexpected keyword"),
        ("fresh", {"batch_size": 0}, "positive"),
        ("fresh", {"ema_decay": 1.0}, "ema_decay"),
        ("fresh", {"arch": {"z": 1}}, "frozen dataclass"),
        ("fresh", {"augment": ("flip",)}, "unknown augment"),
        ("fresh", {"faithful": {"fraction": 2.0}}, "fraction"),
        ("fresh", {"faithful": {"nope": 1}}, "bad faithful"),
    ],
)
def test_registry_validation(name: str, change: dict, needle: str) -> None:
    base = get_variant("dcgan")
    with pytest.raises((ValueError, TypeError), match=needle):
        _validate(name, dataclasses.replace(base, **change))


def test_registry_checks_z_dim_and_class_rows() -> None:
    """z_dim has one source (variant and arch must agree), and a conditional network has one
    class row per class of the variant's data."""
    dcgan, cgan = get_variant("dcgan"), get_variant("cgan-mlp-2class")
    with pytest.raises(ValueError, match="z_dim 64 but its arch has 100"):
        _validate("fresh", dataclasses.replace(dcgan, z_dim=64))
    three = dataclasses.replace(cgan.data, classes=(0, 1, 2))
    with pytest.raises(ValueError, match=r"2 class rows for 3 classes"):
        _validate("fresh", dataclasses.replace(cgan, data=three))


@pytest.mark.parametrize("name", ["cgan-mlp-2class", "cdcgan"])
def test_any_two_classes_train_and_sample(name: str, tmp_path: Path) -> None:
    """Class tables are indexed by position in the class list: a 2-class variant of classes
    5 and 9 trains and samples (an embedding of 2 rows indexed by id 9 would fail)."""
    v = get_variant(name)
    arch = dataclasses.replace(v.arch, n_classes=2)
    v = dataclasses.replace(v, arch=arch, data=dataclasses.replace(v.data, classes=(5, 9)))
    _validate("fresh", v)
    data = random_dataset(v.batch_size * 2, 28, (5, 9))
    tr = Trainer(v, data, TrainSettings(kimg=v.batch_size / 1000, progress=False), tmp_path)
    assert tr.train().step == 1
    z, y = v.sample_latents(16, torch.Generator().manual_seed(0))
    assert set(y.tolist()) == {5, 9}  # labels stay class ids outside the network
    out = tr.G_ema(z, y)
    assert out.shape == (16, 1, 28, 28) and not torch.equal(out[y == 5][:1], out[y == 9][:1])
    G, _ = v.build(0)
    assert G.load_state_dict(tr.G_ema.state_dict()) is not None  # the table is not saved


def test_overrides_parse_to_the_replaced_types() -> None:
    v = get_variant("sngan-ema-diffaug")
    w = v.with_overrides(
        {
            "arch.gch": "32",
            "arch.z_dim": "64",
            "optim.betas": "0.5, 0.999",
            "optim.lr_d": "4e-4",
            "augment": "none",
            "ema_decay": "0",
            "ema_rampup": "0.05",
            "loss_kwargs.n_critic": "2",
        }
    )
    assert w.arch.gch == 32 and w.arch.dch == v.arch.dch
    assert w.z_dim == w.arch.z_dim == 64  # the sampler and the network agree
    assert w.optim.betas == (0.5, 0.999) and w.optim.lr_d == 4e-4
    assert w.augment == () and w.ema_decay == 0.0 and w.ema_rampup == 0.05
    assert v.with_overrides({"ema_rampup": "none"}).ema_rampup is None
    both = v.with_overrides({"optim.lr": "3e-4"}).optim  # Lucic et al.'s one searched rate
    assert both.lr_g == both.lr_d == 3e-4 and v.optim.lr_g != 3e-4
    assert w.build_loss().n_critic == 2 and w.name == v.name
    G, _ = w.build(0)
    z, _ = w.sample_latents(3)
    assert G(z).shape == (3, 1, 28, 28)
    assert v.arch.gch == 64 and v.augment  # the registered recipe is untouched
    assert get_variant("sngan-ema-diffaug") == v


def test_sngan_ema_is_the_diffaugment_ablation_without_it() -> None:
    """The strongest recipe and its DiffAugment ablation differ in the augment policy only,
    so the report's difference between them is DiffAugment's effect, nothing else."""
    base, aug = get_variant("sngan-ema"), get_variant("sngan-ema-diffaug")
    assert base.augment == () and aug.augment == ("translation", "cutout")
    same = dataclasses.replace(
        aug.with_overrides({"augment": "none"}),
        name=base.name,
        summary=base.summary,
        notes=base.notes,
    )
    assert same == base
    g1, d1 = base.build(3)
    g2, d2 = aug.build(3)
    for a, b in zip(
        [*g1.state_dict().values(), *d1.state_dict().values()],
        [*g2.state_dict().values(), *d2.state_dict().values()],
        strict=True,
    ):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"arch.ngf": "8"}, "valid keys: arch.z_dim, arch.gch"),
        ({"name": "x"}, "not a setting"),
        ({"arch.gch": "1.5"}, "not a valid int"),
        ({"optim.betas": "0.5"}, "expected 2"),
        ({"ema_decay": "-0.1"}, "ema_decay must be in"),
        ({"ema_rampup": "0"}, "ema_rampup must be in"),
        ({"ema_rampup": "1.5"}, "ema_rampup must be in"),
        ({"ema_rampup": "fast"}, "not a valid float"),
        ({"loss_kwargs.nope": "1"}, "bad loss settings"),
        ({"augment": "flip"}, "unknown augment"),
        ({"batch_size": "0"}, "must be positive"),
    ],
)
def test_bad_overrides_are_refused(change: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        get_variant("sngan-ema-diffaug").with_overrides(change)


def test_cdcgan_spectral_projection_option() -> None:
    """Miyato & Koyama's discriminator: spectral norm on every layer (embedding included),
    no batch norm; each weight's top singular value is 1 after a few power iterations."""
    v = get_variant("cdcgan").with_overrides({"arch.d_norm": "spectral", "loss": "hinge"})
    _, D = v.build(0)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())
    D.train()
    x, y = torch.randn(8, 1, 28, 28), torch.arange(8)
    for _ in range(30):
        D(x, y)  # power iterations
    for m in (D.trunk[0], D.trunk[2], D.trunk[5], D.linear):
        w = m.weight.detach().reshape(m.weight.shape[0], -1)
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.05)
    assert v.with_overrides({"arch.pool": "mean"}).arch.pool == "mean"
    with pytest.raises(ValueError, match="d_norm must be"):
        v.with_overrides({"arch.d_norm": "layer"})


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropout_is_inverted_dropout(dtype: torch.dtype) -> None:
    """models.layers.Dropout keeps each unit with probability 1 - p, scales kept units by
    1 / (1 - p), passes gradients through the same mask, keeps dtype and channels-last, is
    the identity in eval mode, and draws from torch's RNG (same seed, same mask)."""
    from models.layers import Dropout

    drop = Dropout(0.3)
    x = torch.ones(64, 32, 14, 14, dtype=dtype).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    torch.manual_seed(0)
    y = drop(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005  # 401,408 units: 5 sigma ~ 0.004
    assert torch.allclose(y[kept].float(), torch.full_like(y[kept].float(), 1 / 0.7), rtol=1e-2)
    assert y.dtype == dtype and y.is_contiguous(memory_format=torch.channels_last)
    y.sum().backward()
    assert torch.equal(x.grad != 0, kept)
    torch.manual_seed(0)
    assert torch.equal(drop(x) != 0, kept)
    drop.eval()
    assert drop(x) is x
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))


def test_only_wgan_gp_uses_the_fast_dropout() -> None:
    """wgan-gp's critic builds models.layers.Dropout (1.25x faster training at FID within
    seed noise); dcgan-upsample keeps nn.Dropout, where the change gained 2% (docs/speed.md)."""
    from models.layers import Dropout

    for name, kind in (("wgan-gp", Dropout), ("dcgan-upsample", torch.nn.Dropout)):
        _, D = get_variant(name).build(0)
        kinds = {type(m) for m in D.modules() if isinstance(m, torch.nn.Dropout)}
        assert kinds == {kind}, (name, kinds)
