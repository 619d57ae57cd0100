"""The 2D pose data model (pixel coordinates)."""
from typing import NamedTuple

import numpy as np

from posepile.datasets3d import SPLIT_NAMES, TEST, TRAIN, VALID, get_dataset  # noqa: F401


class DensePose(NamedTuple):
    """Dense surface correspondences of one person (DensePose annotations mapped onto SMPL).

    imcoords (N, 2) float32: image points, px (the same frame as the example's coords);
    i_faces (N, 3) int32: for each point the SMPL vertex ids (0-based) of the mesh triangle it lies on;
    barycoords (N, 3) float32: its barycentric coordinates in that triangle (each row sums to 1), so the body
    point is sum_k barycoords[:, k] * vertices[i_faces[:, k]].
    """
    imcoords: np.ndarray
    i_faces: np.ndarray
    barycoords: np.ndarray

    @classmethod
    def make(cls, value):
        """A DensePose from a DensePose, a (imcoords, i_faces, barycoords) triple or a dict with those keys
        (the Barecat layout); None stays None. Raises ValueError on inconsistent shapes."""
        if value is None or isinstance(value, cls) and _is_canonical(value):
            return value
        if isinstance(value, dict):
            value = (value['imcoords'], value['i_faces'], value['barycoords'])
        imcoords, i_faces, barycoords = value
        result = cls(np.asarray(imcoords, np.float32).reshape(-1, 2),
                     np.asarray(i_faces).astype(np.int32).reshape(-1, 3),
                     np.asarray(barycoords, np.float32).reshape(-1, 3))
        if not len(result.imcoords) == len(result.i_faces) == len(result.barycoords):
            raise ValueError(f'densepose: {len(result.imcoords)} points, {len(result.i_faces)} face triplets and '
                             f'{len(result.barycoords)} barycentric triplets (need one of each per point)')
        return result

    @property
    def n_points(self):
        return len(self.imcoords)

    def __eq__(self, other):
        return (isinstance(other, DensePose) and all(np.array_equal(a, b, equal_nan=a.dtype.kind == 'f')
                                                     for a, b in zip(self, other)))

    def __ne__(self, other):
        return not self == other

    __hash__ = None


def _is_canonical(value):
    return (value.imcoords.dtype == np.float32 and value.i_faces.dtype == np.int32 and
            value.barycoords.dtype == np.float32)


class Pose2DExample:
    """One person in one image: coords (J, 2) px with NaN for unlabelled joints, bbox [x, y, w, h] px;
    optional densepose (a DensePose: dense image points px, their SMPL face vertex triplets and barycentric
    coordinates; a (imcoords, i_faces, barycoords) triple is converted)."""
    __slots__ = ('image_path', 'coords', 'bbox', 'mask', 'camera', 'scene_name', 'image', 'extra', 'densepose')

    def __init__(self, image_path, coords, bbox, *, mask=None, camera=None, scene_name='unknown',
                 image=None, extra=None, densepose=None):
        self.image_path = image_path
        self.coords = np.asarray(coords, np.float32)
        self.bbox = np.asarray(bbox, np.float32)
        self.mask = mask
        self.camera = camera
        self.scene_name = scene_name
        self.image = image
        self.extra = extra
        self.densepose = DensePose.make(densepose)

    def get_image(self):
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
        return f'Pose2DExample({self.image_path!r}, bbox={self.bbox.tolist()})'


class Pose2DDataset:
    def __init__(self, joint_info, train_examples=None, valid_examples=None, test_examples=None):
        self.joint_info = joint_info
        self.examples = {
            TRAIN: list(train_examples or []),
            VALID: list(valid_examples or []),
            TEST: list(test_examples or [])}

    def iter_examples(self):
        for split in (TRAIN, VALID, TEST):
            yield from self.examples[split]

    def __repr__(self):
        counts = ', '.join(f'{SPLIT_NAMES[s]}={len(self.examples[s])}' for s in (TRAIN, VALID, TEST))
        return f'Pose2DDataset({self.joint_info.n_joints} joints, {counts})'
