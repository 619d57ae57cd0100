"""The training stream of a mix: batches holding exactly each source's share.

(This lives here rather than in posepile.storage.torch, which is being reworked separately; the PyTorch
wrappers below import torch lazily, so this module works without it.)

`MixBatchSampler(sizes, shares, seed)` is framework-free: every batch holds `shares[s]` indices of every
source s (grouped by source, in the given order, unless `shuffle_within_batch`). Each source walks its own
random permutation of its examples; when it runs out it starts a new one (its own next epoch), independently
of the others ("round-robin refill"), so the stream is infinite and each source's examples are seen equally
often. Everything is determined by `seed`.

`MixStream(out_dir)` opens a mix built by `posepile mix build` (per-source Barecat shards) and yields
batches of examples of the training split. `torch_iterable_dataset(...)` and `torch_batch_sampler(...)` wrap
them for torch.utils.data.DataLoader.
"""
import json
from pathlib import Path

import numpy as np

from posepile.datasets3d import TRAIN


class MixBatchSampler:
    """Infinite iterator of batches [(source, index), ...] with exactly `shares[source]` items per source.

    sizes: {source: number of examples}; shares: {source: items per batch} (sources with share 0 are left
    out). Per-source order: a permutation drawn from a generator seeded with (seed, source position); after
    it is used up, the next permutation of that source follows.
    """

    def __init__(self, sizes, shares, seed=0, shuffle_within_batch=False):
        self.sources = [s for s in shares if shares[s] > 0]
        self.shares = {s: int(shares[s]) for s in self.sources}
        self.sizes = {s: int(sizes[s]) for s in self.sources}
        empty = [s for s in self.sources if self.sizes[s] <= 0]
        if empty:
            raise ValueError(f'Sources with a batch share but no examples: {", ".join(empty)}')
        self.seed = seed
        self.shuffle_within_batch = shuffle_within_batch
        self.batch_size = sum(self.shares.values())

    def __iter__(self):
        base = [int(x) for x in np.atleast_1d(self.seed)]  # an int or a sequence of ints (e.g. [seed, worker])
        streams = {s: _source_stream(self.sizes[s], np.random.default_rng(base + [i]))
                   for i, s in enumerate(self.sources)}
        batch_rng = np.random.default_rng(base + [len(self.sources), 1])
        while True:
            batch = [(s, next(streams[s])) for s in self.sources for _ in range(self.shares[s])]
            if self.shuffle_within_batch:
                batch = [batch[i] for i in batch_rng.permutation(len(batch))]
            yield batch


def _source_stream(size, rng):
    while True:
        yield from (int(i) for i in rng.permutation(size))


class MixStream:
    """Batches of training examples from a built mix folder (OUT of `posepile mix build`).

    Sources without a finished shard (not built) are left out with a warning unless `require_all`.
    Iterating yields lists of examples (posepile.storage.barecat_store decoded examples, union skeleton).
    """

    def __init__(self, out_dir, seed=0, load_images=True, shuffle_within_batch=False, require_all=False):
        from posepile.storage.barecat_store import BarecatDataset
        self.path = Path(out_dir)
        self.summary = json.loads((self.path / 'mix.json').read_text())
        self.stores = {}
        shares = {}
        for entry in self.summary['entries']:
            if entry['share'] <= 0:
                continue
            shard = self.path / 'sources' / entry['dataset']
            if not (shard / 'mix_source.json').exists():
                if require_all:
                    raise FileNotFoundError(f'{shard}: source {entry["dataset"]} of the mix is not built')
                import logging
                logging.getLogger(__name__).warning('mix source %s not built: left out of the stream',
                                                    entry['dataset'])
                continue
            self.stores[entry['dataset']] = BarecatDataset(shard, load_images=load_images)
            shares[entry['dataset']] = entry['share']
        sizes = {s: len(store.examples[TRAIN]) for s, store in self.stores.items()}
        self.sampler = MixBatchSampler(sizes, shares, seed, shuffle_within_batch)

    @property
    def batch_size(self):
        return self.sampler.batch_size

    def get(self, source, index):
        return self.stores[source].examples[TRAIN][index]

    def __iter__(self):
        for batch in self.sampler:
            yield [self.get(s, i) for s, i in batch]


# ------------------------------------------------------------------------------------------------------
# PyTorch wrappers (torch imported only when called)
def torch_batch_sampler(sizes, shares, seed=0, shuffle_within_batch=False):
    """A torch.utils.data.Sampler of batches: lists of (source, index) pairs, for a map-style dataset that
    accepts such pairs; use it as DataLoader(dataset, batch_sampler=...)."""
    from torch.utils.data import Sampler

    class _MixSampler(Sampler):
        def __init__(self):
            self.sampler = MixBatchSampler(sizes, shares, seed, shuffle_within_batch)

        def __iter__(self):
            return iter(self.sampler)

    return _MixSampler()


def torch_iterable_dataset(out_dir, seed=0, transform=None, load_images=True):
    """A torch.utils.data.IterableDataset yielding whole batches (lists of examples, or of
    `transform(example)`); use DataLoader(ds, batch_size=None). With several workers, worker w streams
    with seed (seed, w): every batch still holds exactly the shares."""
    from torch.utils.data import IterableDataset, get_worker_info

    class _MixIterable(IterableDataset):
        def __iter__(self):
            info = get_worker_info()
            worker_seed = seed if info is None else [seed, info.id]
            stream = MixStream(out_dir, seed=worker_seed, load_images=load_images)
            for batch in stream:
                yield batch if transform is None else [transform(example) for example in batch]

    return _MixIterable()
