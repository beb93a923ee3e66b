"""GAN architectures, losses and the variant registry.

Importing this package registers every built-in variant (one module each, in seed order).
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
from models.registry import Variant, count_parameters, get_variant, register_variant, variant_names

__all__ = ["Variant", "count_parameters", "get_variant", "register_variant", "variant_names"]
