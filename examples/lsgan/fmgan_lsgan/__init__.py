"""LSGAN for fmgan-bench, packaged as a plugin: the variants live in :mod:`fmgan_lsgan.gan`."""
