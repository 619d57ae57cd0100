"""3DOH50K (object-occluded humans): readers of the release's annots.json."""
import json
from pathlib import Path

import numpy as np

JOINT_NAMES = 'rank,rkne,rhip,lhip,lkne,lank,rwri,relb,rsho,lsho,lelb,lwri,neck,head'
JOINT_EDGES = 'rank-rkne-rhip-lhip-lkne-lank,rwri-relb-rsho-lsho-lelb-lwri,rsho-neck-lsho,neck-head'
# lsp_joints_3d are in units of 7 mm: the original multiplies by 1000/7 (a quirk of the release).
UNIT_TO_MM = 1000 / 7
HIP_INDICES = (2, 3)


class TDOHFormatError(ValueError):
    pass


def load_annotations(path):
    """{image id: dict(joints_mm (14, 3) camera frame, intrinsics (3, 3), raw annotation)}."""
    path = Path(path)
    try:
        with open(path, encoding='utf-8') as f:
            annotations = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise TDOHFormatError(f'{path}: cannot read ({e})') from e
    result = {}
    for image_id, annotation in annotations.items():
        try:
            joints = np.asarray(annotation['lsp_joints_3d'], np.float64).reshape(14, 3) * UNIT_TO_MM
            intrinsics = np.asarray(annotation['intri'], np.float64).reshape(3, 3)
        except (KeyError, ValueError, TypeError) as e:
            raise TDOHFormatError(f'{path}: annotation {image_id!r} is malformed ({e!r})') from None
        result[str(image_id)] = dict(joints_mm=joints, intrinsics=intrinsics, raw=annotation)
    return result


def image_relpath(split, image_id):
    return f'tdoh/{split}/images/{image_id}.jpg'
