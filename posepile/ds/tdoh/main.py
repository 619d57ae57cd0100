"""3DOH50K (object-occluded humans): readers of the release's annots.json and training masks.

Raw layout under $DATA_ROOT/tdoh (the original's folder was 3doh/):
    {trainset,testset}/annots.json         {image id: lsp_joints_3d (14 x 3, units of 7 mm, camera frame),
                                            intri (3 x 3), extri, bbox [[x1, y1], [x2, y2]]}
    {trainset,testset}/images/<id>.jpg
    trainset/masks/<id>.png                the person mask of a training image: channel 0 (red) > 127 (the
                                            original reads channel 0 and thresholds at 127 when cropping); the
                                            test set has no masks (as the original)
"""
from pathlib import Path

import numpy as np

from posepile.util.errors import InputError
from posepile.util.validation import check_coords_mm

JOINT_NAMES = 'rank,rkne,rhip,lhip,lkne,lank,rwri,relb,rsho,lsho,lelb,lwri,neck,head'
JOINT_EDGES = 'rank-rkne-rhip-lhip-lkne-lank,rwri-relb-rsho-lsho-lelb-lwri,rsho-neck-lsho,neck-head'
# lsp_joints_3d are in units of 7 mm: the original multiplies by 1000/7 (a quirk of the release).
UNIT_TO_MM = 1000 / 7
HIP_INDICES = (2, 3)


class TDOHFormatError(InputError):
    pass


def load_annotations(path):
    """{image id: dict(joints_mm (14, 3) camera frame, intrinsics (3, 3), raw annotation)}."""
    path = Path(path)
    from posepile.util import fileio
    annotations = fileio.load_json(path, TDOHFormatError)
    result = {}
    for image_id, annotation in annotations.items():
        try:
            joints = np.asarray(annotation['lsp_joints_3d'], np.float64).reshape(14, 3) * UNIT_TO_MM
            intrinsics = np.asarray(annotation['intri'], np.float64).reshape(3, 3)
        except (KeyError, ValueError, TypeError) as e:
            raise TDOHFormatError(f'{path}: annotation {image_id!r} is malformed ({e!r})') from None
        check_coords_mm(joints, path, f'lsp_joints_3d of annotation {image_id!r} (x 1000/7)')
        result[str(image_id)] = dict(joints_mm=joints, intrinsics=intrinsics, raw=annotation)
    return result


def image_relpath(split, image_id):
    return f'tdoh/{split}/images/{image_id}.jpg'


def mask_path(root, split, image_id):
    return Path(root) / split / 'masks' / f'{image_id}.png'


MASK_THRESHOLD = 127  # channel 0 > 127 is the person (the original's threshold of reprojected uint8 masks)


def load_mask(path, image_size):
    """RLE of a training mask: channel 0 (red; the only channel of a grey PNG) > 127. image_size (width,
    height) of the image it belongs to."""
    import cv2

    from posepile.util import masks
    if not Path(path).exists():
        raise TDOHFormatError(f'{path}: the training mask is missing (trainset/masks/<id>.png)')
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise TDOHFormatError(f'{path}: cannot decode the mask PNG')
    if mask.dtype != np.uint8:
        raise TDOHFormatError(f'{path}: expected an 8-bit mask, got {mask.dtype}')
    red = mask if mask.ndim == 2 else mask[..., 2]  # OpenCV stores BGR(A): red is index 2
    if (red.shape[1], red.shape[0]) != tuple(image_size):
        raise TDOHFormatError(f'{path}: mask is {red.shape[1]}x{red.shape[0]}, its image '
                              f'{image_size[0]}x{image_size[1]}')
    return masks.encode(red > MASK_THRESHOLD)


# ------------------------------------------------------------------------------------------------
# The recipe's stages
import logging  # noqa: E402

from posepile.preproc import pipeline  # noqa: E402

logger = logging.getLogger(__name__)
NAME = 'tdoh'
SPLITS = {'trainset': 0, 'testset': 2}
MASKED_SPLITS = ('trainset',)  # the release has masks for the training set only
BOX_EXPANSION = 1.15


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def annotation_box(annotation, joints_px):
    """The shipped box ([[x1, y1], [x2, y2]]) when present, else the expanded box of the joints."""
    from posepile.util import boxes
    box = annotation.get('bbox')
    if box is not None:
        (x1, y1), (x2, y2) = np.asarray(box, np.float64).reshape(2, 2)
        return np.array([x1, y1, x2 - x1, y2 - y1])
    return boxes.expand(boxes.bb_of_points(joints_px), BOX_EXPANSION)


def _load_task_mask(args):
    path, image_path = args
    from posepile.util.improc import image_size_from_header
    return load_mask(path, image_size_from_header(image_path))


def make_crop_tasks(data_root=None, n_workers=None):
    """Crop tasks of every annotated image; training examples carry their released masks."""
    from posepile.datasets3d import Pose3DExample
    from posepile.util.camera import Camera
    from posepile.util.parallel import parallel_map
    root = raw_root(data_root)
    tasks = []
    for split, split_id in SPLITS.items():
        path = root / split / 'annots.json'
        if not path.exists():
            continue
        split_tasks = []
        for image_id, annotation in sorted(load_annotations(path).items()):
            relpath = image_relpath(split, image_id)
            if not (root.parent / relpath).exists():
                raise FileNotFoundError(f'{root.parent / relpath} not found (image of annotation {image_id})')
            camera = Camera(intrinsic_matrix=annotation['intrinsics'], world_up=(0, -1, 0))
            joints = annotation['joints_mm']  # camera frame = world frame here
            box = annotation_box(annotation['raw'], camera.world_to_image(joints))
            example = Pose3DExample(relpath, joints, box, camera, scene_name=split)
            split_tasks.append((f'{split_id}/{image_id}', example, f'tdoh_downscaled/{split}/{image_id}.jpg'))
        if split in MASKED_SPLITS:
            sources = [(mask_path(root, split, key.split('/')[1]), root.parent / example.image_path)
                       for key, example, _ in split_tasks]
            for (_, example, _), rle in zip(split_tasks, parallel_map(
                    _load_task_mask, sources, n_workers=n_workers, desc=f'{split} masks', chunksize=64)):
                example.mask = rle
        tasks += split_tasks
    if not tasks:
        raise FileNotFoundError(f'no annots.json under {root}/trainset or {root}/testset')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of every annotated image (training crops with their released masks)."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root, n_workers), shard, n_workers, data_root)


def make_dataset(data_root=None):
    """3DOH50K: trainset as TRAIN (with the released person masks), testset as TEST (no masks); 14 LSP joints
    in mm (the x1000/7 unit rule)."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0], None, splits[2])


def assemble(data_root=None):
    """The dataset for get_dataset('tdoh')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.tdoh.main', '3DOH50K stages',
                        {'crop': crop_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
