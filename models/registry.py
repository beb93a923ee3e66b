"""The variant registry: a name bound to everything that defines one GAN recipe.

Adding a variant is one module and one registration::

    @register_variant("my-gan")
    def _my_gan() -> Variant:
        return Variant(seed_doc="...", arch=MyArch(), build_generator=MyG, ...)

Registration validates the config eagerly (unknown loss, impossible data options, bad
numbers) so that a broken variant fails at import, not an hour into ``bench run --all``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from models.losses import _LOSSES
from models.variant import OptimConfig, Variant, validate_variant

# OptimConfig and Variant are defined in models.variant and imported from here as well.
__all__ = [
    "OptimConfig", "UnknownVariantError", "Variant", "check_contract", "count_parameters",
    "get_variant", "register_variant", "registering_as", "resolve_variant", "variant_names",
]  # fmt: skip

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_VARIANTS: dict[str, Variant] = {}


class UnknownVariantError(KeyError):
    """Raised for a name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:
        return str(self.args[0])


def _validate(name: str, v: Variant) -> None:
    """A new registration: a well-formed, unused name and a trainable recipe."""
    if not _NAME_RE.match(name):
        raise ValueError(f"variant name {name!r} must match {_NAME_RE.pattern}")
    if name in _VARIANTS:
        raise ValueError(f"variant {name!r} is already registered")
    validate_variant(name, v)


def register_variant(name: str) -> Callable[[Callable[[], Variant]], Callable[[], Variant]]:
    """Decorator: register the :class:`Variant` returned by the decorated factory as ``name``."""

    def deco(factory: Callable[[], Variant]) -> Callable[[], Variant]:
        variant = factory()
        if not isinstance(variant, Variant):
            raise TypeError(
                f"variant {name!r}: its factory returned {type(variant).__name__}, not a Variant"
            )
        _validate(name, variant)
        _VARIANTS[name] = dataclasses.replace(variant, name=name, origin=_ORIGIN)
        return factory

    return deco


_ORIGIN: dict[str, Any] | None = None  # set while a plugin's code runs (registering_as)


@contextlib.contextmanager
def registering_as(origin: dict[str, Any]) -> Iterator[Callable[[], list[str]]]:
    """Stamp every variant registered inside the block with ``origin``; yields a function
    that lists the variants registered in the block so far. Where the block raises, its
    variants and losses are removed again, so a plugin is registered whole or not at all."""
    global _ORIGIN
    before_v, before_l = set(_VARIANTS), set(_LOSSES)
    _ORIGIN = origin
    try:
        yield lambda: [n for n in _VARIANTS if n not in before_v]
    except BaseException:
        for n in set(_VARIANTS) - before_v:
            del _VARIANTS[n]
        for n in set(_LOSSES) - before_l:
            del _LOSSES[n]
        raise
    finally:
        _ORIGIN = None


def variant_names() -> list[str]:
    """Registered names ordered by seed document ("000".."004", then "beyond"), then by
    registration, with plugin variants after the built-in ones: the order of `bench list`
    and of `bench run --all`."""
    return sorted(_VARIANTS, key=lambda n: (_VARIANTS[n].origin is not None, _VARIANTS[n].seed_doc))


def check_contract(v: Variant, n: int = 4) -> None:
    """The variant contract, checked on a test batch without touching the global RNG.

    G and D build from ``arch``; ``G(z, labels)`` maps ``v.sample_latents(n)`` to ``(n, 1,
    R, R)`` images, finite and inside ``data.value_range``, for R the variant's resolution;
    ``D(x, labels)`` gives ``n`` raw scores (``(n,)`` or ``(n, 1)``); the loss's ``d_loss``
    and ``g_loss`` return a finite scalar and a dict of statistics, and backpropagate.
    ``labels`` is None for unconditional variants. The common variant test
    (tests/test_variants.py) runs this for every registered variant; plugins run it when
    they load.

    Raises:
        ValueError: naming the variant and what does not hold.
    """
    name = v.name or "<variant>"
    res = v.resolution
    lo, hi = v.data.value_range
    with torch.random.fork_rng(devices=[]):
        G, D = v.build(0)
        if not isinstance(G, nn.Module) or not isinstance(D, nn.Module):
            raise ValueError(f"variant {name!r}: build_generator and build_discriminator "
                             "must return torch.nn.Module instances")  # fmt: skip
        G.eval(), D.eval()
        z, y = v.sample_latents(n, torch.Generator().manual_seed(0))
        with torch.no_grad():
            x = G(z, y)
        if not isinstance(x, torch.Tensor) or tuple(x.shape) != (n, 1, res, res):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"variant {name!r}: G(z, labels) gave {shape} for a batch of {n}, "
                             f"expected {(n, 1, res, res)}")  # fmt: skip
        if not torch.isfinite(x).all() or x.min() < lo - 1e-6 or x.max() > hi + 1e-6:
            raise ValueError(
                f"variant {name!r}: G's images lie in [{x.min():.3g}, "
                f"{x.max():.3g}], outside data.value_range {v.data.value_range}"
            )
        with torch.no_grad():
            out = D(x, y)
        if not isinstance(out, torch.Tensor) or out.numel() != n or out.dim() > 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"variant {name!r}: D(x, labels) gave {shape} for a batch of {n}, "
                             "expected one raw score per image: (n,) or (n, 1)")  # fmt: skip
        G.train(), D.train()
        loss = v.build_loss()
        real = torch.rand(n, 1, res, res) * (hi - lo) + lo
        fake = G(z, y)
        for what, (value, stats) in (
            ("d_loss", loss.d_loss(D, real, fake.detach(), y, y)),
            ("g_loss", loss.g_loss(D, fake, y)),
        ):
            ok = isinstance(value, torch.Tensor) and value.numel() == 1 and isinstance(stats, dict)
            if not ok or not math.isfinite(float(value.detach())):
                raise ValueError(f"variant {name!r}: loss {v.loss!r} {what} must return a finite "
                                 "scalar tensor and a dict of statistics")  # fmt: skip
            value.backward()


def get_variant(name: str) -> Variant:
    """The variant registered as ``name``.

    Raises:
        UnknownVariantError: listing the registered names.
    """
    try:
        return _VARIANTS[name]
    except KeyError:
        raise UnknownVariantError(
            f"unknown variant {name!r}; registered: {', '.join(variant_names())}"
        ) from None


def resolve_variant(
    name: str, faithful: bool = False, overrides: dict[str, str] | None = None
) -> Variant:
    """The variant as a run trains it: the registered recipe, with its seed document's own
    data settings under ``faithful`` and the ``--set`` ``overrides`` applied.

    Raises:
        UnknownVariantError: for a name that is not registered.
        ValueError: when an override does not fit the variant.
    """
    v = get_variant(name)
    v = v.as_seed_trained() if faithful else v
    return v.with_overrides(overrides) if overrides else v


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
