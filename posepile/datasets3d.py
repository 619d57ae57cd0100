"""The 3D pose data model: examples, datasets, bone lengths, and `get_dataset` by registered name."""
import hashlib
import json
import logging

import numpy as np

from posepile.joint_info import JointInfo

TRAIN, VALID, TEST = 0, 1, 2
SPLIT_NAMES = {TRAIN: 'train', VALID: 'valid', TEST: 'test'}

logger = logging.getLogger(__name__)


class Pose3DExample:
    """One person in one image.

    image_path: path relative to DATA_ROOT (absolute allowed; an ndarray frame transiently before cropping).
    world_coords: (J, 3) float32, mm, NaN for invalid joints. bbox: [x, y, w, h] px.
    camera: posepile.util.camera.Camera. mask: COCO RLE dict of the person (or all people) in the image.
    univ_coords: height-normalised "universal" skeleton (3DHP, MuPoTS) or None.
    parameters: optional body-model parameters (dict).
    """
    __slots__ = ('image_path', 'world_coords', 'bbox', 'camera', 'activity_name', 'scene_name', 'mask',
                 'univ_coords', 'parameters', 'image')

    def __init__(self, image_path, world_coords, bbox, camera, *, activity_name='unknown',
                 scene_name='unknown', mask=None, univ_coords=None, parameters=None, image=None):
        self.image_path = image_path
        self.world_coords = None if world_coords is None else np.asarray(world_coords, np.float32)
        self.bbox = np.asarray(bbox, np.float32)
        self.camera = camera
        self.activity_name = activity_name
        self.scene_name = scene_name
        self.mask = mask
        self.univ_coords = None if univ_coords is None else np.asarray(univ_coords, np.float32)
        self.parameters = parameters
        self.image = image

    def get_image(self):
        """The image as an RGB uint8 array (decoded from image_path unless already in memory)."""
        if self.image is not None:
            return self.image
        if isinstance(self.image_path, np.ndarray):
            return self.image_path
        from posepile.util import improc
        from posepile.paths import abs_image_path
        return improc.imread_rgb(abs_image_path(self.image_path))

    def load(self):
        return self

    def __getstate__(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state):
        for k in self.__slots__:
            setattr(self, k, state.get(k))

    def __repr__(self):
        return f'Pose3DExample({self.image_path!r}, bbox={self.bbox.tolist()})'


class Pose3DDataset:
    def __init__(self, joint_info, train_examples=None, valid_examples=None, test_examples=None,
                 compute_bone_lengths=True):
        self.joint_info = joint_info
        self.examples = {
            TRAIN: list(train_examples or []),
            VALID: list(valid_examples or []),
            TEST: list(test_examples or [])}
        self.train_bones = None
        self.trainval_bones = None
        if compute_bone_lengths and joint_info.stick_figure_edges:
            self.update_bones()

    def iter_examples(self):
        for split in (TRAIN, VALID, TEST):
            yield from self.examples[split]

    def update_bones(self):
        """Mean bone lengths (mm) over TRAIN and over TRAIN+VALID, from valid joints only."""
        train_means, train_counts = compute_mean_bones(
            self.examples[TRAIN], self.joint_info, return_counts=True)
        valid_means, valid_counts = compute_mean_bones(
            self.examples[VALID], self.joint_info, return_counts=True)
        total = train_counts + valid_counts
        with np.errstate(invalid='ignore', divide='ignore'):
            trainval = np.where(
                total > 0,
                (np.nan_to_num(train_means) * train_counts + np.nan_to_num(valid_means) * valid_counts)
                / np.maximum(total, 1), np.nan)
        self.trainval_bones = trainval.astype(np.float32)
        self.train_bones = train_means if len(self.examples[TRAIN]) > 0 else self.trainval_bones

    def __repr__(self):
        counts = ', '.join(f'{SPLIT_NAMES[s]}={len(self.examples[s])}' for s in (TRAIN, VALID, TEST))
        return f'Pose3DDataset({self.joint_info.n_joints} joints, {counts})'


def compute_mean_bones(examples, joint_info, return_counts=False):
    """Mean length of every edge over the examples, counting only bones whose two joints are valid."""
    edges = np.array(joint_info.stick_figure_edges, np.int64).reshape(-1, 2)
    sums = np.zeros(len(edges), np.float64)
    counts = np.zeros(len(edges), np.int64)
    chunk = 4096
    # a saved dataset's split exposes its joints as one memory-mapped array: no example objects needed
    array = examples.coords_array() if hasattr(examples, 'coords_array') else None
    for start in range(0, len(examples), chunk):
        if array is not None:
            coords = np.asarray(array[start:start + chunk], np.float64)
            if start % (64 * chunk) == 0:
                examples.release_pages()  # keep the mapped pages read so far out of the resident set
        else:
            coords = np.stack([ex.world_coords for ex in examples[start:start + chunk]]).astype(np.float64)
        lengths = np.linalg.norm(coords[:, edges[:, 0]] - coords[:, edges[:, 1]], axis=-1)
        valid = np.isfinite(lengths)
        sums += np.where(valid, lengths, 0).sum(axis=0)
        counts += valid.sum(axis=0)
    with np.errstate(invalid='ignore', divide='ignore'):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).astype(np.float32)
    return (means, counts) if return_counts else means


def _cache_name(name, kwargs):
    if not kwargs:
        return f'{name}.posepile'
    digest = hashlib.sha1(json.dumps(kwargs, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f'{name}_{digest}.posepile'


def cache_path(name, **kwargs):
    from posepile.paths import cache_dir
    return cache_dir() / _cache_name(name, kwargs)


def save_to_cache(name, dataset, **kwargs):
    """Store a finished dataset so that `get_dataset(name, **kwargs)` loads it."""
    from posepile.storage import annotations
    path = cache_path(name, **kwargs)
    annotations.save_dataset(dataset, path)
    logger.info('Saved %s to %s', dataset, path)
    return path


def get_dataset(name, force_rebuild=False, **kwargs):
    """The dataset registered under `name` (see posepile/registry.py), loaded from the cache when built.

    A name ending in .posepile or .pkl is loaded from that file.
    """
    from posepile import registry
    from posepile.storage import annotations
    if str(name).endswith(('.posepile', '.pkl')):
        return annotations.load_dataset(name)
    builder = registry.get_builder(name)
    path = cache_path(name, **kwargs)
    if path.exists() and not force_rebuild:
        return annotations.load_dataset(path)
    dataset = builder(**kwargs)
    annotations.save_dataset(dataset, path)
    return dataset


def get_joint_info(name):
    return get_dataset(name).joint_info


__all__ = ['TRAIN', 'VALID', 'TEST', 'Pose3DExample', 'Pose3DDataset', 'JointInfo', 'get_dataset',
           'save_to_cache', 'compute_mean_bones']
