"""3DOH50K (object-occluded humans): readers of the release's annots.json."""
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


# ------------------------------------------------------------------------------------------------
# The recipe's stages
import logging  # noqa: E402

from posepile.preproc import pipeline  # noqa: E402

logger = logging.getLogger(__name__)
NAME = 'tdoh'
SPLITS = {'trainset': 0, 'testset': 2}
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


def make_crop_tasks(data_root=None):
    from posepile.datasets3d import Pose3DExample
    from posepile.util.camera import Camera
    root = raw_root(data_root)
    tasks = []
    for split, split_id in SPLITS.items():
        path = root / split / 'annots.json'
        if not path.exists():
            continue
        for image_id, annotation in sorted(load_annotations(path).items()):
            relpath = image_relpath(split, image_id)
            if not (root.parent / relpath).exists():
                raise FileNotFoundError(f'{root.parent / relpath} not found (image of annotation {image_id})')
            camera = Camera(intrinsic_matrix=annotation['intrinsics'], world_up=(0, -1, 0))
            joints = annotation['joints_mm']  # camera frame = world frame here
            box = annotation_box(annotation['raw'], camera.world_to_image(joints))
            example = Pose3DExample(relpath, joints, box, camera, scene_name=split)
            tasks.append((f'{split_id}/{image_id}', example, f'tdoh_downscaled/{split}/{image_id}.jpg'))
    if not tasks:
        raise FileNotFoundError(f'no annots.json under {root}/trainset or {root}/testset')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of every annotated image."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def make_dataset(data_root=None):
    """3DOH50K: trainset as TRAIN, testset as TEST; 14 LSP joints in mm (the x1000/7 unit rule)."""
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
