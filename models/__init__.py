"""GAN architectures, losses and the variant registry.

Importing this package registers every built-in variant (one module each, in seed order),
then the variants of every installed plugin (entry points, :mod:`models.plugins`).
"""

# `bench list` orders variants by seed document (models.registry.variant_names), not by import.
from models import (  # noqa: F401  (registration side effects)
    cdcgan,
    cgan_mlp,
    dcgan,
    dcgan64,
    keras_dcgan,
    sngan,
    sngan_resnet,
    wgan_gp,
)
from models.plugins import load_entry_points
from models.registry import Variant, count_parameters, get_variant, register_variant, variant_names

load_entry_points()  # installed plugins (models.plugins); after the built-ins, so clashes fail

__all__ = ["Variant", "count_parameters", "get_variant", "register_variant", "variant_names"]
