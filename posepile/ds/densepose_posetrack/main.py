"""DensePose-PoseTrack -> Pose2DDataset: the 17 PoseTrack joints plus each person's DensePose points on SMPL
(Pose2DExample.densepose), crops via the pipeline; the same pipeline as densepose_coco on PoseTrack frames.

Raw layout: $DATA_ROOT/densepose_posetrack/densepose_posetrack_{train,val}2017.json (COCO format, DensePose's
challenge data_format.md: images {id, file_name, width, height, vid_id, frame_id, ...}, person annotations with
keypoints 17 x [x, y, v], bbox, track_id and, when DensePose-annotated, dp_masks and the dp_* point lists),
DensePose's UV_Processed.mat (see posepile.ds.densepose_coco.main.uv_data_path) and the PoseTrack 2018 frames
under $DATA_ROOT/posetrack/. train becomes TRAIN, val VALID.

Frames, as the original PosePile (original-posepile-facts.md, densepose_posetrack): the PoseTrack 2018 layout
posetrack/images/<phase>/<seq:06d>_<source>_<phase>/<frame:06d>.jpg, with <seq>_<source> the folder of the
json's file_name (e.g. 000342_mpii; a folder already ending in _<phase> is used as is) and <frame> the image's
frame_id (a PoseTrack 2018 image id, 1 + 6-digit video + 4-digit frame, is reduced to its last 4 digits).
People: non-crowd annotations with DensePose points; PoseTrack joints (nose, head bottom, head top, ears,
limbs), valid iff v > 0 (PoseTrack labels carry one visibility flag, so the COCO rule counts labelled joints as
visible: at least 17 / 3 and 17 / 2 labelled); more than 6 of the 12 limb joints labelled; box: the annotation
box; DensePose points as densepose_coco.
`densepose_posetrack_like_coco` (the original's make_like_coco): the same examples relabelled onto the COCO-17
joint names, the PoseTrack-only head and head-top slots (where COCO has the eyes) left out (NaN).
"""
import logging
import re
from pathlib import Path

import numpy as np

from posepile.ds.densepose_coco import main as dp_coco
from posepile.ds.posetrack.main import JOINT_EDGES, JOINT_NAMES
from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'densepose_posetrack'
ANNOTATION_FILES = {'densepose_posetrack_train2017.json': ('train', 0), 'densepose_posetrack_val2017.json': ('val', 1)}
N_JOINTS = 17
# make_like_coco: PoseTrack's head (bottom) and head top sit where COCO has the eyes; they carry no COCO joint
POSETRACK_ONLY_JOINTS = ('head', 'htop')
_SEQUENCE_FOLDER = re.compile(r'^(\d+)_(.+)$')


class DensePosePoseTrackFormatError(InputError):
    pass


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def frame_relpath(path, image, phase):
    """The frame's path under DATA_ROOT in the PoseTrack 2018 layout (see the module docstring)."""
    folder = Path(str(image.get('file_name', ''))).parent.name
    match = _SEQUENCE_FOLDER.match(folder)
    if match is None:
        raise DensePosePoseTrackFormatError(f'{path}: image {image.get("id")} has the file_name '
                                            f'{image.get("file_name")!r}, expected .../<sequence>_<source>/<frame>.jpg')
    sequence, source = match.groups()
    if source.endswith(f'_{phase}'):
        source = source[:-len(phase) - 1]
    try:
        frame = int(image['frame_id'])
    except (KeyError, TypeError, ValueError):
        raise DensePosePoseTrackFormatError(f'{path}: image {image.get("id")} has no integer frame_id') from None
    if frame >= 10 ** 10:  # a PoseTrack 2018 image id: 1, the 6-digit video, the 4-digit frame
        frame %= 10 ** 4
    return f'posetrack/images/{phase}/{int(sequence):06d}_{source}_{phase}/{frame:06d}.jpg'


def keep_person(path, annotation):
    if annotation.get('iscrowd', 0) or not dp_coco.has_densepose(annotation):
        return False
    keypoints = _keypoints(path, annotation)
    return (dp_coco.passes_visibility_rule(keypoints, visible_flags=(1, 2)) and
            dp_coco.enough_limb_joints(dp_coco.keypoints_to_coords(keypoints), JOINT_NAMES))


def _keypoints(path, annotation):
    try:
        return dp_coco.keypoint_array(path, annotation, N_JOINTS)
    except dp_coco.DensePoseFormatError as e:
        raise DensePosePoseTrackFormatError(str(e)) from None


def make_crop_tasks(data_root=None):
    from posepile.datasets2d import Pose2DExample
    root = raw_root(data_root)
    converter = None
    tasks = []
    found = [name for name in ANNOTATION_FILES if (root / name).exists()]
    if not found:
        raise DensePosePoseTrackFormatError(f'no {" or ".join(ANNOTATION_FILES)} in {root}: download them with '
                                            'PoseTrack/get_DensePose_PoseTrack.sh (https://github.com/facebookresearch/'
                                            'DensePose)')
    for file_name in found:
        phase, split = ANNOTATION_FILES[file_name]
        path = root / file_name
        try:
            images, annotations = dp_coco.load_annotation_file(path)
        except dp_coco.DensePoseFormatError as e:
            raise DensePosePoseTrackFormatError(str(e)) from None
        n_before = len(tasks)
        for annotation in annotations:
            if not keep_person(path, annotation):
                continue
            image = images.get(annotation.get('image_id'))
            if image is None:
                raise DensePosePoseTrackFormatError(f'{path}: annotation {annotation.get("id")} refers to unknown '
                                                    f'image {annotation.get("image_id")}')
            converter = converter or dp_coco.load_converter(data_root)
            try:
                box = dp_coco.annotation_box(path, annotation)
                densepose = dp_coco.annotation_densepose(path, annotation, image, converter)
            except dp_coco.DensePoseFormatError as e:
                raise DensePosePoseTrackFormatError(str(e)) from None
            relpath = frame_relpath(path, image, phase)
            sequence = Path(relpath).parent.name
            example = Pose2DExample(relpath, dp_coco.keypoints_to_coords(_keypoints(path, annotation)), box,
                                    scene_name=sequence, densepose=densepose,
                                    extra={'annotation_id': annotation['id'], 'track_id': annotation.get('track_id')})
            crop = f'{NAME}_downscaled/{phase}/{sequence}/{Path(relpath).stem}_{annotation["id"]}.jpg'
            tasks.append((f'{split}/{annotation["id"]:012d}', example, crop))
        logger.info('%s: %d annotations, %d kept', path.name, len(annotations), len(tasks) - n_before)
    if not tasks:
        raise DensePosePoseTrackFormatError(f'{root}: no DensePose-annotated person passes the keypoint rules')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of the kept people, with their DensePose points."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def joint_info():
    from posepile.joint_info import JointInfo
    return JointInfo(JOINT_NAMES, JOINT_EDGES)


def make_dataset(data_root=None):
    from posepile.datasets2d import Pose2DDataset
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose2DDataset(joint_info(), splits[0], splits[1])


def make_like_coco(data_root=None):
    """The examples of densepose_posetrack on the COCO-17 joint names; head and head top (NaN) left out."""
    import copy

    from posepile.datasets2d import Pose2DDataset
    from posepile.joint_info import JointInfo
    dropped = [JOINT_NAMES.split(',').index(name) for name in POSETRACK_ONLY_JOINTS]
    splits = pipeline.examples_by_split(NAME, data_root)

    def relabel(example):
        example = copy.copy(example)
        example.coords = example.coords.copy()
        example.coords[dropped] = np.nan
        return example
    return Pose2DDataset(JointInfo(dp_coco.JOINT_NAMES, dp_coco.JOINT_EDGES),
                         [relabel(e) for e in splits[0]], [relabel(e) for e in splits[1]])


def assemble_stage(data_root=None):
    """The datasets densepose_posetrack and densepose_posetrack_like_coco for get_dataset()."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root),
                            f'{NAME}_like_coco': lambda: make_like_coco(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.densepose_posetrack.main', 'DensePose-PoseTrack stages', {
        'crop': crop_stage,
        'assemble': assemble_stage,
    })


if __name__ == '__main__':
    main()
