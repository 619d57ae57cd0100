"""The 2D pose data model (pixel coordinates)."""
import numpy as np

from posepile.datasets3d import SPLIT_NAMES, TEST, TRAIN, VALID, get_dataset  # noqa: F401


class Pose2DExample:
    """One person in one image: coords (J, 2) px with NaN for unlabelled joints, bbox [x, y, w, h] px."""
    __slots__ = ('image_path', 'coords', 'bbox', 'mask', 'camera', 'scene_name', 'image', 'extra')

    def __init__(self, image_path, coords, bbox, *, mask=None, camera=None, scene_name='unknown',
                 image=None, extra=None):
        self.image_path = image_path
        self.coords = np.asarray(coords, np.float32)
        self.bbox = np.asarray(bbox, np.float32)
        self.mask = mask
        self.camera = camera
        self.scene_name = scene_name
        self.image = image
        self.extra = extra

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
