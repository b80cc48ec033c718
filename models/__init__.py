"""Generators (VQGAN, multi-decoder pix2pix), PatchGAN discriminator, and the checkpoint registry.

Import what you need from the submodules (models.vqgan, models.pix2pix, models.patchgan,
models.registry); this file imports nothing so `import models` stays cheap.
"""
