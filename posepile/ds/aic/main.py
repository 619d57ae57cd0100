"""AI Challenger keypoints -> Pose2DDataset: 14 joints (limbs, head top, neck) in px.

Raw layout: $DATA_ROOT/aic/AI_Challenger.tar.gz (images as members ./train/images/<name>.jpg) and
$DATA_ROOT/aic/annotations/aic_train.json (COCO-style: images with id and file_name, annotations with image_id,
keypoints 14 x [x, y, v] and bbox [x, y, w, h] px). The tar is never extracted: it is read member by member and
each needed JPEG is decoded from the member's bytes. Everything becomes TRAIN.

Visibility v: 0 unlabelled (-> NaN), 1 occluded (kept as valid), 2 visible. A person is kept when at least
14/3 joints are visible and at least 14/2 labelled (as the original PosePile). Box: the annotation bbox.
"""
import logging
import tarfile
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'aic'

JOINT_NAMES = 'rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,head,neck'
JOINT_EDGES = 'rwri-relb-rsho-neck,rank-rkne-rhip-lhip,neck-head,rsho-rhip'
N_JOINTS = 14
UNLABELLED, OCCLUDED, VISIBLE = 0, 1, 2
TAR_FILE = 'AI_Challenger.tar.gz'
ANNOTATION_FILE = 'annotations/aic_train.json'
IMAGE_MEMBER_PREFIX = 'train/images/'


class AICFormatError(InputError):
    pass


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def joint_info():
    from posepile.joint_info import JointInfo
    return JointInfo(JOINT_NAMES, JOINT_EDGES)


def _read_json(path):
    from posepile.util import fileio
    return fileio.load_json(path, AICFormatError)


def _parse_person(path, annotation):
    keypoints = np.asarray(annotation['keypoints'], np.float64).reshape(-1)
    if keypoints.size != 3 * N_JOINTS:
        raise AICFormatError(f'{path}: annotation {annotation.get("id")} has {keypoints.size} keypoint values, '
                             f'expected {3 * N_JOINTS} (14 x [x, y, v])')
    bbox = np.asarray(annotation['bbox'], np.float32).reshape(-1)
    if bbox.size != 4:
        raise AICFormatError(f'{path}: annotation {annotation.get("id")} has a bbox of {bbox.size} values, '
                             'expected 4 ([x, y, w, h])')
    visibility = keypoints[2::3].astype(int)
    if not np.isin(visibility, (UNLABELLED, OCCLUDED, VISIBLE)).all():
        raise AICFormatError(f'{path}: annotation {annotation.get("id")} has visibility flags '
                             f'{sorted(set(visibility.tolist()))}, expected 0, 1 or 2')
    coords = keypoints.reshape(N_JOINTS, 3)[:, :2].astype(np.float32)
    coords[visibility == UNLABELLED] = np.nan
    return {'id': annotation.get('id'), 'coords': coords, 'visibility': visibility, 'bbox': bbox}


def load_annotations(path):
    """{image file name: [people]} of aic_train.json, each person a dict with id, coords (14, 2) px (NaN where
    unlabelled), visibility (14,) in {0, 1, 2}, bbox [x, y, w, h] px, in file order.

    Raises AICFormatError naming the file and the problem."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get('images'), list) or \
            not isinstance(data.get('annotations'), list):
        raise AICFormatError(f'{path}: not an AI Challenger keypoint file (needs "images" and "annotations" lists)')
    try:
        names = {image['id']: image['file_name'] for image in data['images']}
        people = {}
        for annotation in data['annotations']:
            if annotation['image_id'] not in names:
                raise AICFormatError(f'{path}: annotation {annotation.get("id")} refers to unknown image '
                                     f'{annotation["image_id"]}')
            people.setdefault(names[annotation['image_id']], []).append(_parse_person(path, annotation))
    except AICFormatError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise AICFormatError(f'{path}: malformed annotation ({type(e).__name__}: {e})') from e
    return people


def is_person_kept(visibility):
    """At least 14/3 visible and at least 14/2 labelled (visible or occluded) joints."""
    visibility = np.asarray(visibility)
    n_visible = np.count_nonzero(visibility == VISIBLE)
    n_labelled = n_visible + np.count_nonzero(visibility == OCCLUDED)
    return n_visible >= N_JOINTS / 3 and n_labelled >= N_JOINTS / 2


def image_name_of_member(member):
    """'x.jpg' for a regular member ./train/images/x.jpg (or train/images/x.jpg), else None."""
    name = member.name.removeprefix('./')
    if not member.isfile() or not name.startswith(IMAGE_MEMBER_PREFIX) or '/' in name[len(IMAGE_MEMBER_PREFIX):]:
        return None
    return name[len(IMAGE_MEMBER_PREFIX):]


def crop_relpath(file_name, i_person):
    """aic_downscaled/<first 2 chars>/<next 2 chars>/<stem>_<i:02d>.jpg (i counts the kept people of the image)."""
    stem = Path(file_name).stem
    return f'{NAME}_downscaled/{stem[:2]}/{stem[2:4]}/{stem}_{i_person:02d}.jpg'


def _crops_of_image(tar, member, file_name, people, data_root):
    from posepile.datasets2d import Pose2DExample
    from posepile.preproc.cropping import make_efficient_example
    from posepile.util import improc
    kept = [p for p in people if is_person_kept(p['visibility'])]
    if not kept:
        return []
    try:
        image = improc.decode_jpeg(tar.extractfile(member).read())
    except improc.ImageDecodeError as e:
        raise AICFormatError(f'{member.name} in the tar: cannot decode the JPEG') from e
    results = []
    for i_person, person in enumerate(kept):
        example = Pose2DExample(f'{NAME}/{TAR_FILE}/{member.name.removeprefix("./")}', person['coords'],
                                person['bbox'], image=image, extra={'annotation_id': person['id']})
        crop = make_efficient_example(example, crop_relpath(file_name, i_person), data_root=data_root)
        results.append((f'0/{Path(file_name).stem}/{i_person:02d}', crop))
    return results


def _image_shard(names, shard):
    from posepile.util.parallel import parse_shard, shard_items
    index, count = parse_shard(shard)
    return set(shard_items(sorted(names), index, count)), index, count


def crop_stage(shard=None, data_root=None):
    """Crops of the kept people, decoded member by member from AI_Challenger.tar.gz (result: one pickle per
    shard, the format of pipeline.run_crop_stage)."""
    from tqdm import tqdm

    from posepile.util import fileio
    root = raw_root(data_root)
    people_by_image = load_annotations(root / ANNOTATION_FILE)
    my_images, index, count = _image_shard(people_by_image, shard)
    out_path = work_dir(data_root) / 'crops' / pipeline.RESULT_PATTERN.format(index, count)
    if out_path.exists():
        logger.info('%s exists: shard already finished', out_path)
        return out_path
    results, seen = [], set()
    with tarfile.open(root / TAR_FILE, mode='r|*') as tar:  # a stream: members in file order, no seeking
        for member in tqdm(tar, desc=f'aic tar {index + 1}/{count}', mininterval=2, disable=None):
            file_name = image_name_of_member(member)
            if file_name in my_images and file_name not in seen:
                seen.add(file_name)
                results.extend(_crops_of_image(tar, member, file_name, people_by_image[file_name], root.parent))
    missing = len(my_images) - len(seen)
    if missing:
        logger.warning('%d annotated images of this shard are not in %s', missing, root / TAR_FILE)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fileio.save_pickle(sorted(results, key=lambda item: item[0]), out_path)
    return out_path


def make_dataset(data_root=None):
    """AI Challenger training people (14 joints)."""
    from posepile.datasets2d import Pose2DDataset
    return Pose2DDataset(joint_info(), pipeline.examples_by_split(NAME, data_root)[0])


def assemble_stage(data_root=None):
    """The dataset aic for get_dataset()."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.aic.main', 'AI Challenger stages', {
        'crop': crop_stage,
        'assemble': assemble_stage,
    })


if __name__ == '__main__':
    main()
