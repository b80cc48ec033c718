"""Batches made by DataLoader worker processes, in the sampler's own order.

The sampler's batch number n is a pure function of (seed, n) (sampler.py), so worker w of N can
make batches start + (w + kN) x stride, k = 0, 1, ...; the DataLoader hands its workers' batches
out in round-robin order, which is start, start + stride, ...: the very stream the sampler gives
alone, for any number of workers. Under torchrun each rank is one shard of the run's stream
(start = rank, stride = world size; trainer.py), so ranks never draw the same batch. The state
to resume from is the number of the next batch handed out (the workers run `prefetch` batches
ahead of it).

Every batch seeds its own generator, so no worker draws from a global random state; the
DataLoader's own base seed comes from a generator of its own, not from torch's global one, which
the training step's randomness (and its bit-for-bit resume) owns. On CUDA the batches come in
pinned memory, so Batch.to(device) copies without blocking.
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .sampler import BalancedSampler, Batch


class _Shard(IterableDataset):
    """One worker's share of the sampler's stream from batch `start` on."""

    def __init__(self, sampler: BalancedSampler, start: int):
        self.sampler = sampler
        self.start = start

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        index = self.start + worker * self.sampler.stride
        while True:
            yield self.sampler.batch(index)
            index += workers * self.sampler.stride


class BatchLoader:
    """The sampler's stream from `workers` processes; next_batch / state_dict as the sampler's."""

    def __init__(self, sampler: BalancedSampler, workers: int, *, prefetch: int = 2,
                 pin_memory: bool = False):
        if workers < 1:
            raise ValueError(f"BatchLoader needs at least one worker, got {workers}; use the sampler itself")
        self.sampler = sampler
        self.next_index = sampler.next_index
        loader = DataLoader(_Shard(sampler, sampler.next_index), batch_size=None, num_workers=workers,
                            prefetch_factor=max(1, prefetch), pin_memory=pin_memory,
                            generator=torch.Generator().manual_seed(0))
        self._batches = iter(loader)

    def next_batch(self) -> Batch:
        batch = next(self._batches)
        self.next_index += self.sampler.stride
        return batch

    def state_dict(self) -> dict:
        return {"next_index": self.next_index}

    def close(self) -> None:
        shutdown = getattr(self._batches, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
