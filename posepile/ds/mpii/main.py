"""MPII Human Pose -> Pose2DDataset: 16 joints (px, unlabelled as NaN), head boxes kept for PCKh.

Raw layout: $DATA_ROOT/mpii/mpii_human_pose_v1_u12_1.mat (the official annotation, struct RELEASE) and
$DATA_ROOT/mpii/images/*.jpg. Training images (img_train == 1) with annotated people become TRAIN; the
official test annotations are not public. Person box, as the original: a square of side 200 * scale px (MPII's
scale is relative to a 200 px tall person) centred 0.075 * side below objpos. All 16 joints are kept (the
original's single-person variant keeps the 12 limb joints; conversion by name gives those).
"""
import logging
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'mpii'

JOINT_NAMES = 'rank,rkne,rhip,lhip,lkne,lank,pelv,thor,neck,htop,rwri,relb,rsho,lsho,lelb,lwri'
JOINT_EDGES = 'rank-rkne-rhip-pelv-lhip-lkne-lank,pelv-thor-neck-htop,rwri-relb-rsho-thor-lsho-lelb-lwri'
ANNOTATION_FILE = 'mpii_human_pose_v1_u12_1.mat'


class MPIIFormatError(InputError):
    pass


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def _as_list(value):
    if isinstance(value, np.ndarray):
        return list(value.reshape(-1))
    return [value]


def load_people(mat_path):
    """Training people: list of dicts (image name, coords (16, 2) px NaN-unlabelled, visible (16,) bool,
    head_box [x, y, w, h], center (2,), scale)."""
    import scipy.io
    mat_path = Path(mat_path)
    try:
        release = scipy.io.loadmat(str(mat_path), struct_as_record=False, squeeze_me=True)['RELEASE']
        annolist, img_train = _as_list(release.annolist), np.asarray(release.img_train).reshape(-1)
    except (OSError, ValueError, KeyError, AttributeError, NotImplementedError) as e:
        raise MPIIFormatError(f'{mat_path}: not the official MPII annotation ({e})') from e
    people = []
    for i_image, (annotation, is_train) in enumerate(zip(annolist, img_train)):
        if not is_train:
            continue
        name = annotation.image.name
        for rect in _as_list(getattr(annotation, 'annorect', [])):
            points = getattr(getattr(rect, 'annopoints', None), 'point', None)
            if points is None or not hasattr(rect, 'objpos'):
                continue
            coords = np.full((16, 2), np.nan, np.float32)
            visible = np.zeros(16, bool)
            for point in _as_list(points):
                j = int(point.id)
                coords[j] = [float(point.x), float(point.y)]
                is_visible = point.is_visible
                visible[j] = bool(int(is_visible)) if not isinstance(is_visible, np.ndarray) or is_visible.size \
                    else False
            people.append(dict(image=str(name), coords=coords, visible=visible,
                               head_box=np.array([rect.x1, rect.y1, rect.x2 - rect.x1, rect.y2 - rect.y1], np.float32),
                               center=np.array([rect.objpos.x, rect.objpos.y], np.float64), scale=float(rect.scale),
                               image_index=i_image))
    return people


BOX_DOWN_SHIFT = 0.075  # of the side: objpos lies above the body's middle (the original's rule)


def person_box(center, scale):
    """The original's single-person box: a square of side 200 * scale px centred 0.075 * side below objpos."""
    side = 200.0 * scale
    cx, cy = center[0], center[1] + BOX_DOWN_SHIFT * side
    return np.array([cx - side / 2, cy - side / 2, side, side], np.float32)


def make_crop_tasks(data_root=None):
    from posepile.datasets2d import Pose2DExample
    root = raw_root(data_root)
    path = root / ANNOTATION_FILE
    if not path.exists():
        raise FileNotFoundError(f'{path} not found: download mpii_human_pose_v1_u12_2.zip and extract it')
    tasks = []
    for i, person in enumerate(load_people(path)):
        relpath = f'mpii/images/{person["image"]}'
        if not (root.parent / relpath).exists():
            raise FileNotFoundError(f'{root.parent / relpath} not found (image of person {i})')
        example = Pose2DExample(relpath, person['coords'], person_box(person['center'], person['scale']),
                                extra={'head_box': person['head_box'].tolist(), 'visible': person['visible'].tolist()})
        crop = f'mpii_downscaled/{Path(person["image"]).stem}_{i:05d}.jpg'
        tasks.append((f'0/{i:06d}', example, crop))
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of every annotated training person."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def make_dataset(data_root=None):
    """MPII training people (16 joints, head boxes in `extra`)."""
    from posepile.datasets2d import Pose2DDataset
    from posepile.joint_info import JointInfo
    return Pose2DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), pipeline.examples_by_split(NAME, data_root)[0])


def assemble(data_root=None):
    """The dataset for get_dataset('mpii')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.mpii.main', 'MPII stages', {
        'crop': crop_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
