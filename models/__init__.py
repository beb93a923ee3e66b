"""GAN architectures, losses and the variant registry.

Importing this package registers every built-in variant (one module each, in seed order).
"""

from models import dcgan, wgan_gp  # noqa: F401  (registration side effects)
from models.registry import Variant, count_parameters, get_variant, register_variant, variant_names

__all__ = ["Variant", "count_parameters", "get_variant", "register_variant", "variant_names"]
