"""What one GAN recipe is (:class:`Variant`: architecture, builders, loss, optimiser, data,
EMA, augmentation), how ``--set KEY=VALUE`` overrides change it, and the checks that refuse
a recipe no run could train. The registry (:mod:`models.registry`) binds names to them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from models.data_options import DataOptions
from models.layers import ClassIndex
from models.losses import GANLoss, build_loss, loss_names


@dataclass(frozen=True)
class OptimConfig:
    """Adam settings for both networks (every seed document uses Adam)."""

    lr_g: float = 2e-4  # DCGAN paper's 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)  # DCGAN paper: beta1 0.5 against oscillation
    eps: float = 1e-8  # PyTorch default; Keras-built seeds use 1e-7


@dataclass(frozen=True)
class Variant:
    """One GAN recipe: architecture, objective, optimiser, batch, data, provenance.

    ``build_generator(arch)`` / ``build_discriminator(arch)`` are called with the variant's
    frozen ``arch`` dataclass, which lives beside the model code.
    """

    seed_doc: str  # seed document reproduced ("000".."004") or "beyond" for our own recipes
    summary: str  # one-line architecture summary for `bench list` and the docs
    arch: Any  # frozen dataclass of architecture hyper-parameters
    build_generator: Callable[[Any], nn.Module]
    build_discriminator: Callable[[Any], nn.Module]
    loss: str  # name in models.losses
    batch_size: int
    z_dim: int
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    conditional: bool = False  # G(z, y) and D(x, y) take class labels
    data: DataOptions = field(default_factory=DataOptions)
    ema_decay: float = 0.999  # G_ema's per-step decay (cap): half-life ~ 700 G steps
    # StyleGAN2-ADA's EMA ramp-up: G_ema's half-life is at most this fraction of the G steps
    # taken so far, so the average never lags far behind a generator that is still improving
    # fast (short budgets). None: TensorFlow's warm-up min(decay, (1+t)/(10+t)).
    ema_rampup: float | None = None
    augment: tuple[str, ...] = ()  # DiffAugment policy applied to every D input (models.augment)
    faithful: dict[str, Any] = field(default_factory=dict)  # DataOptions overrides (--faithful)
    notes: str = ""  # deviations from the seed document and why
    name: str = ""  # filled in by register_variant
    # Where a plugin variant's code comes from (models.plugins): package and version or file,
    # and the sha256 of its source; None for the variants this package ships.
    origin: dict[str, Any] | None = None

    @property
    def resolution(self) -> int:
        """Training and sampling resolution (28 or 64)."""
        return self.data.resolution

    def build(self, seed: int) -> tuple[nn.Module, nn.Module]:
        """Fresh (G, D) initialised from ``seed`` (seeds the global torch RNG first)."""
        torch.manual_seed(seed)
        G, D = self.build_generator(self.arch), self.build_discriminator(self.arch)
        if self.conditional:  # class tables are indexed by position in the class list
            for m in (*G.modules(), *D.modules()):
                if isinstance(m, ClassIndex):
                    m.set_class_ids(self.data.class_ids)
        return G, D

    def sample_latents(
        self, n: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Draw ``n`` noise vectors and, for conditional variants, uniform class labels.

        Labels are drawn from the classes the variant trains on (``data.class_ids``). This is
        the one place latents are sampled, for training and for evaluation alike.
        """
        z = torch.randn(n, self.z_dim, generator=generator, device=device)
        if not self.conditional:
            return z, None
        ids = torch.tensor(self.data.class_ids, device=device)
        pick = torch.randint(len(ids), (n,), generator=generator, device=device)
        return z, ids[pick]

    def as_seed_trained(self) -> Variant:
        """This variant with the seed document's own data settings (``--faithful``).

        By default every variant trains on the same full training set so the comparison is
        fair; where a seed trained differently (seed 004 on a random half), ``faithful``
        holds the DataOptions overrides that reproduce it.
        """
        if not self.faithful:
            return self
        return dataclasses.replace(self, data=dataclasses.replace(self.data, **self.faithful))

    def with_overrides(self, overrides: dict[str, str]) -> Variant:
        """This variant with hyper-parameters replaced (``bench run --set KEY=VALUE``).

        Keys name a field of the recipe: ``arch.<field>``, ``optim.<field>``,
        ``loss_kwargs.<name>`` (any keyword the loss accepts), ``loss``, ``ema_decay``,
        ``ema_rampup`` (a fraction, or ``none``), ``augment`` (comma-separated policies, or
        ``none``) and ``batch_size``. Values are strings parsed to the type of the value they
        replace, so a sweep can be written on the command line and recorded verbatim. The
        result is validated like a registration.

        Raises:
            ValueError: unknown key, unparsable value, or an invalid resulting recipe; the
                message names the key and, for unknown keys, the valid ones.
        """
        v = self
        for key, raw in overrides.items():
            v = _override_one(v, key, raw)
        validate_variant(v.name or "<override>", v)
        return v

    def build_loss(self) -> GANLoss:
        """The loss object this variant trains with."""
        return build_loss(self.loss, **self.loss_kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description; factories are recorded by their qualified names."""
        return {
            "name": self.name,
            "seed_doc": self.seed_doc,
            "summary": self.summary,
            "arch": {"type": type(self.arch).__name__, **dataclasses.asdict(self.arch)},
            "generator": _qualname(self.build_generator),
            "discriminator": _qualname(self.build_discriminator),
            "loss": self.loss,
            "loss_kwargs": dict(self.loss_kwargs),
            "optim": dataclasses.asdict(self.optim),
            "batch_size": self.batch_size,
            "z_dim": self.z_dim,
            "conditional": self.conditional,
            "data": self.data.to_dict(),
            "ema_decay": self.ema_decay,
            "ema_rampup": self.ema_rampup,
            "augment": list(self.augment),
            "notes": self.notes,
            **({"origin": dict(self.origin)} if self.origin else {}),
        }


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _parse_as(raw: str, like: Any, key: str) -> Any:
    """``raw`` parsed to the type of ``like`` (bool, int, float, str or a tuple of those)."""
    try:
        if isinstance(like, bool):
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(like, int):
            return int(raw)
        if isinstance(like, float):
            return float(raw)
        if isinstance(like, tuple):
            items = [x for x in raw.split(",") if x.strip()]
            if like and len(items) != len(like):
                raise ValueError(f"{len(items)} values, expected {len(like)}")
            return tuple(_parse_as(x, like[0] if like else "", key) for x in items)
        if isinstance(like, str):
            return raw.strip()
    except ValueError as exc:
        kind = type(like).__name__
        raise ValueError(f"--set {key}={raw}: not a valid {kind} ({exc})") from None
    raise ValueError(f"--set {key}: values of type {type(like).__name__} cannot be overridden")


_TOP_LEVEL_OVERRIDES = ("loss", "ema_decay", "ema_rampup", "augment", "batch_size")
# Top-level keys that ``none`` (or an empty value) switches off: (the off value, a value of
# the type anything else is parsed as).
_SWITCHABLE: dict[str, tuple[Any, Any]] = {"augment": ((), ()), "ema_rampup": (None, 0.0)}


def override_keys(v: Variant) -> list[str]:
    """Every key :meth:`Variant.with_overrides` accepts for ``v`` (loss keywords aside)."""
    return [
        *(f"arch.{f.name}" for f in dataclasses.fields(v.arch)),
        *(f"optim.{f.name}" for f in dataclasses.fields(v.optim)),
        "optim.lr (both lr_g and lr_d)",
        "loss_kwargs.<name>",
        *_TOP_LEVEL_OVERRIDES,
    ]


def _override_one(v: Variant, key: str, raw: str) -> Variant:
    head, _, attr = key.partition(".")
    if key == "optim.lr":  # one learning rate for G and D, the axis Lucic et al. search
        lr = _parse_as(raw, v.optim.lr_g, key)
        return dataclasses.replace(v, optim=dataclasses.replace(v.optim, lr_g=lr, lr_d=lr))
    if head in ("arch", "optim") and attr:
        obj = getattr(v, head)
        names = [f.name for f in dataclasses.fields(obj)]
        if attr in names:
            new = dataclasses.replace(obj, **{attr: _parse_as(raw, getattr(obj, attr), key)})
            if head == "arch" and attr == "z_dim":  # the sampler reads Variant.z_dim
                return dataclasses.replace(v, arch=new, z_dim=new.z_dim)
            return dataclasses.replace(v, **{head: new})
    elif head == "loss_kwargs" and attr:
        value: Any = _parse_as(raw, 0.0, key)
        if float(value).is_integer() and "." not in raw and "e" not in raw.lower():
            value = int(value)
        return dataclasses.replace(v, loss_kwargs={**v.loss_kwargs, attr: value})
    elif key in _SWITCHABLE:
        off, like = _SWITCHABLE[key]
        value = off if raw.strip().lower() in ("", "none") else _parse_as(raw, like, key)
        return dataclasses.replace(v, **{key: value})
    elif key in _TOP_LEVEL_OVERRIDES:
        return dataclasses.replace(v, **{key: _parse_as(raw, getattr(v, key), key)})
    raise ValueError(
        f"--set {key}: not a setting of variant {v.name or '?'}; valid keys: "
        + ", ".join(override_keys(v))
    )


def validate_variant(name: str, v: Variant) -> None:
    """Refuse a recipe no run could train: an unknown loss or augment, bad loss keywords,
    impossible numbers or data options, an arch that disagrees with z_dim or the classes.

    Raises:
        ValueError: naming the variant and what is wrong.
    """
    if not dataclasses.is_dataclass(v.arch) or not v.arch.__dataclass_params__.frozen:
        raise ValueError(f"variant {name!r}: arch must be a frozen dataclass")
    if v.loss not in loss_names():
        raise ValueError(f"variant {name!r}: unknown loss {v.loss!r} ({', '.join(loss_names())})")
    try:
        build_loss(v.loss, **v.loss_kwargs)  # rejects bad loss kwargs now
    except TypeError as exc:
        raise ValueError(f"variant {name!r}: bad loss settings for {v.loss!r} ({exc})") from None
    if v.batch_size <= 0 or v.z_dim <= 0:
        raise ValueError(f"variant {name!r}: batch_size and z_dim must be positive")
    if not 0.0 <= v.ema_decay < 1.0:
        raise ValueError(f"variant {name!r}: ema_decay must be in [0, 1)")
    if v.ema_rampup is not None and not 0.0 < v.ema_rampup <= 1.0:
        raise ValueError(f"variant {name!r}: ema_rampup must be in (0, 1], or none")
    o = v.optim
    if not all(math.isfinite(x) and x > 0 for x in (o.lr_g, o.lr_d)):
        raise ValueError(f"variant {name!r}: learning rates must be positive and finite")
    if len(o.betas) != 2 or not all(0.0 <= b < 1.0 for b in o.betas):
        raise ValueError(f"variant {name!r}: Adam betas must be two numbers in [0, 1), "
                         f"got {o.betas}")  # fmt: skip
    if not (math.isfinite(o.eps) and o.eps >= 0):
        raise ValueError(f"variant {name!r}: Adam eps must be finite and >= 0, got {o.eps}")
    _validate_numbers(name, "arch", dataclasses.asdict(v.arch))
    _validate_numbers(name, "loss_kwargs", v.loss_kwargs)
    v.data.validate()
    from models.augment import AUGMENTS

    if any(a not in AUGMENTS for a in v.augment):
        raise ValueError(
            f"variant {name!r}: unknown augment in {v.augment} ({', '.join(AUGMENTS)})"
        )
    arch_z, arch_k = getattr(v.arch, "z_dim", v.z_dim), getattr(v.arch, "n_classes", None)
    if arch_z != v.z_dim:
        raise ValueError(f"variant {name!r}: z_dim {v.z_dim} but its arch has {arch_z}")
    if v.conditional and arch_k is not None and arch_k != len(v.data.class_ids):
        raise ValueError(
            f"variant {name!r}: arch has {arch_k} class rows for {len(v.data.class_ids)} "
            f"classes {v.data.class_ids}"
        )
    try:
        dataclasses.replace(v.data, **v.faithful).validate()
    except TypeError as exc:
        raise ValueError(f"variant {name!r}: bad faithful overrides ({exc})") from None


def _validate_numbers(name: str, where: str, values: dict[str, Any]) -> None:
    """Settings no network can train with: a count (int) that is not positive, a float that
    is not finite, a dropout outside [0, 1), an epsilon that is not positive."""
    for key, value in values.items():
        items = value if isinstance(value, tuple | list) else (value,)
        for x in items:
            if isinstance(x, bool) or not isinstance(x, int | float):
                continue
            bad = ""
            if isinstance(x, int) and x <= 0 and where == "arch":
                bad = "must be a positive count"
            elif isinstance(x, float) and not math.isfinite(x):
                bad = "must be finite"
            elif "dropout" in key and not 0.0 <= x < 1.0:
                bad = "must be in [0, 1)"
            elif key.endswith("eps") and x <= 0:
                bad = "must be positive"
            if bad:
                raise ValueError(f"variant {name!r}: {where}.{key} = {value} {bad}")
