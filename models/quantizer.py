"""Vector quantiser with straight-through gradients (van den Oord et al. 2017, as in VQGAN).

Each spatial vector z_ij of the encoder output is replaced by its nearest codebook entry e_k.
The loss is

    L = ||sg[z] - z_q||²  +  β ||z - sg[z_q]||²
        (codebook term)      (commitment term)

so β weights the COMMITMENT term, which pulls the encoder towards the codes (VQ-VAE paper, and
the formula of the winning LMC solution). taming-transformers' `VectorQuantizer2(legacy=True)`,
its default, puts β on the codebook term instead; `legacy_beta=True` reproduces that. Both terms
are means over elements (MSE), as in taming.

Gradients reach the encoder through the straight-through estimator sg[z_q] + (z - sg[z]): the
forward value is exactly z_q, the backward pass copies the decoder's gradient to z unchanged.

Dead codes (never chosen) waste capacity; with `reseed_threshold > 0` a code whose running hit
rate falls below it is moved onto a random encoder output of the current batch (training only).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

# Rows of the distance matrix computed at once: bounds memory at 512² windows with 8192 codes
# (16384 × 8192 floats would be 512 MB) at no cost in speed.
_DISTANCE_CHUNK_ELEMENTS = 1 << 24


class VectorQuantizer(nn.Module):
    def __init__(self, n_embed: int, embed_dim: int, beta: float = 0.25, *,
                 legacy_beta: bool = False, reseed_threshold: float = 0.0,
                 usage_decay: float = 0.99):
        super().__init__()
        self.n_embed, self.embed_dim, self.beta = n_embed, embed_dim, beta
        self.legacy_beta = legacy_beta
        self.reseed_threshold = reseed_threshold
        self.usage_decay = usage_decay
        self.embedding = nn.Embedding(n_embed, embed_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / n_embed, 1.0 / n_embed)
        # Running hits per code per batch; training state only, so it is not saved in checkpoints.
        self.register_buffer("usage_ema", torch.ones(n_embed), persistent=False)
        # A plain attribute, not state: the bound on distance-matrix elements computed at once.
        # A TorchScript trace freezes the number of chunks, so the bioimage.io export traces with
        # the whole matrix at once (whole_distance_matrix).
        self.distance_chunk_elements = _DISTANCE_CHUNK_ELEMENTS

    def nearest(self, z_flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of z_flat [N, D]. Computed in fp32 even under
        autocast: in fp16 the |z|² + |e|² - 2 z·e expansion loses the small differences between
        neighbouring codes and picks the wrong one."""
        codes = self.embedding.weight.float()
        z_flat = z_flat.float()
        code_sq = (codes * codes).sum(1)
        chunk = max(1, self.distance_chunk_elements // self.n_embed)
        out = []
        with torch.autocast(device_type=z_flat.device.type, enabled=False):
            # One piece when it fits: no Split node in a trace (ONNX Runtime refuses a huge split size).
            for part in (z_flat.split(chunk) if chunk < z_flat.shape[0] else (z_flat,)):
                # |z|² is the same for every code of a row, so it does not change the argmin.
                dist = code_sq[None, :] - 2.0 * part @ codes.t()
                out.append(dist.argmin(1))
        return torch.cat(out)

    def _check(self, z: torch.Tensor) -> None:
        if z.ndim != 4 or z.shape[1] != self.embed_dim:
            raise ValueError(f"quantiser expects [B, {self.embed_dim}, h, w], got {tuple(z.shape)}")

    def _lookup(self, indices: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Codes as [B, D, h, w] in z's dtype with standard NCHW strides. The explicit layout
        matters: a permuted view of 1×1 maps counts as contiguous yet has other strides, and the
        decoder's convs may then take another kernel and differ in the last bits between the
        inference and the training path."""
        b, d, h, w = z.shape
        codes = self.embedding(indices).view(b, h, w, d).permute(0, 3, 1, 2)
        return codes.to(z.dtype).clone(memory_format=torch.contiguous_format)

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Inference path: nearest codes only, no loss, no statistics, no re-seeding."""
        self._check(z)
        indices = self.nearest(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]))
        return self._lookup(indices, z)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """z [B, D, h, w] -> (z_q straight-through [B, D, h, w], loss scalar, stats).

        stats: "perplexity" (exp of the entropy of code use in this batch; n_embed = uniform use),
        "usage" (fraction of the codebook used in this batch), "indices" [B, h, w]. Detached.
        """
        b, d, h, w = z.shape
        self._check(z)
        z_flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        if self.training and self.reseed_threshold > 0:
            self._reseed_dead_codes(z_flat.detach())
        indices = self.nearest(z_flat)
        z_q = self._lookup(indices, z)

        codebook_term = F.mse_loss(z_q, z.detach())
        commitment_term = F.mse_loss(z, z_q.detach())
        if self.legacy_beta:
            loss = commitment_term + self.beta * codebook_term
        else:
            loss = codebook_term + self.beta * commitment_term

        # Straight-through: the value is exactly z_q (z - sg[z] is exactly 0, whereas taming's
        # z + sg[z_q - z] is z_q only up to rounding), the gradient goes to z unchanged.
        z_q = z_q.detach() + (z - z.detach())
        stats = self._stats(indices)
        stats["indices"] = indices.view(b, h, w)
        return z_q, loss, stats

    @torch.no_grad()
    def _stats(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        counts = torch.bincount(indices, minlength=self.n_embed).float()
        if self.training:
            self.usage_ema.mul_(self.usage_decay).add_(counts, alpha=1 - self.usage_decay)
        p = counts / counts.sum()
        entropy = -(p * torch.log(p.clamp_min(1e-10))).sum()
        return {"perplexity": entropy.exp(), "usage": (counts > 0).float().mean()}

    @torch.no_grad()
    def _reseed_dead_codes(self, z_flat: torch.Tensor) -> int:
        dead = (self.usage_ema < self.reseed_threshold).nonzero().flatten()
        if dead.numel() == 0:
            return 0
        pick = torch.randint(0, z_flat.shape[0], (dead.numel(),), device=z_flat.device)
        self.embedding.weight[dead] = z_flat[pick].to(self.embedding.weight.dtype)
        # A fresh code gets the grace of an average code before it can be judged dead again.
        self.usage_ema[dead] = 1.0
        return int(dead.numel())


@contextmanager
def whole_distance_matrix(model: nn.Module) -> Iterator[None]:
    """Within the block, every quantiser of `model` computes its distances in one piece (for a
    trace that must work at any tile size); the bounds are restored after."""
    quantisers = [m for m in model.modules() if isinstance(m, VectorQuantizer)]
    before = [q.distance_chunk_elements for q in quantisers]
    for q in quantisers:
        q.distance_chunk_elements = 1 << 62
    try:
        yield
    finally:
        for q, value in zip(quantisers, before):
            q.distance_chunk_elements = value
