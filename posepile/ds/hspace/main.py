"""HSPACE (synthetic GHUM people in complex scenes): TFRecords read without TensorFlow.

Raw layout under $DATA_ROOT/hspace:
    2021_01/train/<name>.tfrecord   TFRecord files of tf.train.Example records, one rendered frame each:
        'image/rgb'                     bytes: an encoded image (PNG/JPEG) whose channels are stored in BGR
                                        order (the original reverses the channels after decoding)
        'character_masks'               bytes: an encoded single-channel label image (0 = background)
        'camera_intrinsics'             float list fx, fy, cx, cy (px); the world frame is the camera frame
        'number_of_rigged_characters'   int64 N
        'RIGGED_<i>/joints_3d'          float list: 63 GHUM joints x (x, y, z), metres, camera frame
        'RIGGED_<i>/mask_id'            int64: person i's pixels carry this label or this label - 1
The records' order in a file is the temporal order used by the adaptive selection.
"""
import functools
import logging
from pathlib import Path

import numpy as np
from posepile.util.errors import InputError

GHUM_JOINT_NAMES = (
    'pelv,spin1,spin2,spin3,neck,head,head2,lbrow1,lbrow2,rbrow1,rbrow2,lbrow3,rbrow3,lcla,lsho,lelb,lwri,'
    'lindex1,lindex2,lindex3,lmiddle1,lmiddle2,lmiddle3,lring1,lring2,lring3,lpinkie1,lpinkie2,lpinkie3,lthu1,'
    'lthu2,lthu,rcla,rsho,relb,rwri,rindex1,rindex2,rindex3,rmiddle1,rmiddle2,rmiddle3,rring1,rring2,rring3,'
    'rpinkie1,rpinkie2,rpinkie3,rthu1,rthu2,rthu,lhip,lkne,lank,lhee,lfoo,ltoe,rhip,rkne,rank,rhee,rfoo,rtoe')
# The 35 joints kept (the original's selection and order; 'ghum' suffix group in the merged datasets)
JOINT_NAMES = ('pelv,spin1,spin2,spin3,neck,head,head2,lbrow1,rbrow1,lcla,lsho,lelb,lwri,lmiddle1,lmiddle3,lthu,'
               'rcla,rsho,relb,rwri,rmiddle1,rmiddle3,rthu,lhip,lkne,lank,lhee,lfoo,ltoe,rhip,rkne,rank,rhee,rfoo,'
               'rtoe')
JOINT_EDGES = ('rthu-rwri-relb-rsho-rcla-spin3,rwri-rmiddle1-rmiddle3,rbrow1-head-head2,'
               'head-neck-spin3-spin2-spin1-pelv-rhip-rkne-rank-rhee-rfoo-rtoe')
N_GHUM_JOINTS = 63
TRAIN_GLOB = '2021_01/train/*.tfrecord'
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 20  # AdaptivePoseSampler2(100, True, True, 20), one per TFRecord file, shared by persons
MIN_BOX_SIDE_PX = 100
MORPH_KERNEL_PX = 4  # masks: erode once, then dilate twice with a 4x4 rectangle

logger = logging.getLogger(__name__)


class HSPACEFormatError(InputError):
    pass


@functools.lru_cache
def selected_joint_indices():
    names = GHUM_JOINT_NAMES.split(',')
    return np.array([names.index(name) for name in JOINT_NAMES.split(',')])


def _feature(path, index, example, name, kind, length=None):
    value = example.get(name)
    ok = value is not None and (isinstance(value, list) if kind == 'bytes' else (
        isinstance(value, np.ndarray) and value.dtype == (np.float32 if kind == 'float' else np.int64)))
    if not ok:
        raise HSPACEFormatError(f'{path}: record {index}: missing {kind} feature {name!r}')
    if length is not None and len(value) != length:
        raise HSPACEFormatError(f'{path}: record {index}: feature {name!r} has {len(value)} values, '
                                f'expected {length}')
    return value


def parse_record(path, index, example):
    """dict(joints_mm (N, 35, 3) camera frame, intrinsics (3, 3) px, mask_ids (N,), image / mask bytes) of
    one parsed tf.train.Example (posepile.util.tfrecord.parse_example)."""
    n_people = int(_feature(path, index, example, 'number_of_rigged_characters', 'int64', 1)[0])
    if n_people < 0:
        raise HSPACEFormatError(f'{path}: record {index}: number_of_rigged_characters is {n_people}')
    joints, mask_ids = [], []
    for i in range(n_people):
        values = _feature(path, index, example, f'RIGGED_{i}/joints_3d', 'float', N_GHUM_JOINTS * 3)
        joints_m = values.reshape(N_GHUM_JOINTS, 3).astype(np.float64)
        if not np.all(np.isfinite(joints_m)) or np.max(np.abs(joints_m)) > 1000:
            raise HSPACEFormatError(f'{path}: record {index}: RIGGED_{i}/joints_3d has non-finite or '
                                    'implausible values (expected metres)')
        joints.append(joints_m[selected_joint_indices()] * 1000)
        mask_ids.append(int(_feature(path, index, example, f'RIGGED_{i}/mask_id', 'int64', 1)[0]))
    fx, fy, cx, cy = _feature(path, index, example, 'camera_intrinsics', 'float', 4).astype(np.float64)
    if not (np.isfinite([fx, fy, cx, cy]).all() and fx > 0 and fy > 0):
        raise HSPACEFormatError(f'{path}: record {index}: invalid camera_intrinsics {[fx, fy, cx, cy]}')
    return dict(joints_mm=np.array(joints, np.float64).reshape(n_people, -1, 3), mask_ids=mask_ids,
                intrinsics=np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]]),
                image_bytes=_feature(path, index, example, 'image/rgb', 'bytes', 1)[0],
                mask_bytes=_feature(path, index, example, 'character_masks', 'bytes', 1)[0])


def read_records(path):
    """The parsed records of one TFRecord file, in file order (see parse_record)."""
    from posepile.util import tfrecord
    try:
        return [parse_record(path, i, example) for i, example in enumerate(tfrecord.iter_examples(path))]
    except tfrecord.TFRecordError as e:
        raise HSPACEFormatError(str(e)) from None


def select_people(records):
    """[(record index, person index)] kept by the adaptive selection: one sampler for the whole file that sees
    the people of each record in order (v2: 100 mm, buffer 20, validity checked, NaN unchanged)."""
    from posepile.util.sampling import select_frames
    order = [(i, p) for i, record in enumerate(records) for p in range(len(record['joints_mm']))]
    if not order:
        return []
    poses = np.stack([records[i]['joints_mm'][p] for i, p in order])
    kept = select_frames(poses, SELECTION_THRESHOLD_MM, SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)
    return [order[k] for k in kept]


def decode_image(path, index, data):
    """RGB uint8 (H, W, 3). The stored channel order is BGR; OpenCV decodes to the reverse of the stored
    order, which is therefore RGB."""
    import cv2
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise HSPACEFormatError(f'{path}: record {index}: cannot decode image/rgb')
    return image


def decode_labels(path, index, data, imshape):
    """The label image (H, W) of character_masks."""
    import cv2
    labels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise HSPACEFormatError(f'{path}: record {index}: cannot decode character_masks')
    if labels.ndim == 3:
        labels = labels[..., 0]
    if labels.shape != tuple(imshape[:2]):
        raise HSPACEFormatError(f'{path}: record {index}: character_masks is {labels.shape}, the image '
                                f'{tuple(imshape[:2])}')
    return labels


def clean_mask(mask):
    """uint8 0/255: one erosion then two dilations with a 4x4 rectangle (removes single-pixel specks)."""
    import cv2
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (MORPH_KERNEL_PX, MORPH_KERNEL_PX))
    mask = cv2.erode(mask.astype(np.uint8) * 255, kernel, iterations=1)
    return cv2.dilate(mask, kernel, iterations=2)


def person_box(labels, mask_id):
    """[x, y, w, h] px: the bounding rectangle of the cleaned pixels labelled mask_id or mask_id - 1."""
    import cv2
    mask = clean_mask((labels == mask_id) | (labels == mask_id - 1))
    return np.array(cv2.boundingRect(mask), np.float32)


def make_camera(intrinsics):
    from posepile.util.camera import Camera
    return Camera(intrinsic_matrix=intrinsics, world_up=(0, -1, 0))


# ------------------------------------------------------------------------------------------------
# The recipe's stages
from posepile.preproc import pipeline  # noqa: E402

NAME = 'hspace'


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def record_paths(data_root=None):
    paths = sorted(raw_root(data_root).glob(TRAIN_GLOB))
    if not paths:
        raise FileNotFoundError(f'no {TRAIN_GLOB} under {raw_root(data_root)}: download the release (main.sh)')
    return paths


def crop_relpath(record_name, i_record, i_person):
    return f'{NAME}_downscaled/train/{record_name}/{i_record:08d}_{i_person:03d}.jpg'


def _crops_of_record(path, i_record, record, people, data_root):
    """(key, cropped example) of the selected `people` of one record with a mask box of min side >= 100 px."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.cropping import make_efficient_example
    from posepile.util import masks
    image = decode_image(path, i_record, record['image_bytes'])
    labels = decode_labels(path, i_record, record['mask_bytes'], image.shape)
    all_people_mask = masks.encode(clean_mask(labels > 0) > 0)
    camera = make_camera(record['intrinsics'])
    results = []
    for i_person in people:
        box = person_box(labels, record['mask_ids'][i_person])
        if min(box[2:4]) < MIN_BOX_SIDE_PX:
            continue
        source = f'{NAME}/{path.relative_to(raw_root(data_root))}#{i_record}'
        example = Pose3DExample(source, record['joints_mm'][i_person], box, camera, mask=all_people_mask,
                                image=image)
        relpath = crop_relpath(path.stem, i_record, i_person)
        crop = make_efficient_example(example, relpath, data_root=str(raw_root(data_root).parent))
        results.append((f'0/{path.stem}/{i_record:08d}_{i_person:03d}', crop))
    return results


def _inputs_record(out_path):
    """Where the fingerprint of a stage output's inputs is kept (pipeline.save_stage_json)."""
    return Path(out_path).with_suffix('.inputs.json')


def _finished(out_path, inputs):
    """Whether `out_path` was written from exactly these input files (unchanged size and mtime)."""
    return Path(out_path).exists() and pipeline.load_stage_json(_inputs_record(out_path), inputs) is not None


def process_file(path, data_root=None):
    """All crops of one TFRecord file (cached in posepile_work/files/<name>.pkl, so a rerun resumes; redone when
    the file changes)."""
    from posepile.preproc.cropping import limit_threads_for_worker
    from posepile.util import fileio
    limit_threads_for_worker()
    path = Path(path)
    cache = work_dir(data_root) / 'files' / f'{path.stem}.pkl'
    if _finished(cache, [path]):
        return fileio.load_pickle(cache)
    records = read_records(path)
    by_record = {}
    for i_record, i_person in select_people(records):
        by_record.setdefault(i_record, []).append(i_person)
    results = []
    for i_record, people in by_record.items():  # records without a selected person are never decoded
        results += _crops_of_record(path, i_record, records[i_record], people, data_root)
    fileio.save_pickle(results, cache)
    pipeline.save_stage_json(cache.name, _inputs_record(cache), [path])
    return results


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Selection, mask boxes and crops, TFRecord file by file (results: one pickle per shard, redone when one of
    its TFRecord files changes)."""
    from posepile.util import fileio
    from posepile.util.parallel import parallel_map, parse_shard, shard_items
    index, count = parse_shard(shard)
    out_path = work_dir(data_root) / 'crops' / pipeline.RESULT_PATTERN.format(index, count)
    paths = shard_items(record_paths(data_root), index, count)
    if _finished(out_path, paths):
        logger.info('%s exists: shard already finished', out_path)
        return out_path
    worker = functools.partial(process_file, data_root=data_root)
    per_file = parallel_map(worker, paths, n_workers=n_workers, desc=f'hspace files {index + 1}/{count}')
    results = sorted((item for items in per_file for item in items), key=lambda item: item[0])
    logger.info('%d crops from %d TFRecord files', len(results), len(paths))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fileio.save_pickle(results, out_path)
    pipeline.save_stage_json(out_path.name, _inputs_record(out_path), paths)
    return out_path


def make_dataset(data_root=None):
    """HSPACE train people (35 GHUM joints, mm, camera frame = world frame)."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), pipeline.examples_by_split(NAME, data_root)[0])


def assemble(data_root=None):
    """The dataset for get_dataset('hspace')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.hspace.main', 'HSPACE stages', {
        'crop': crop_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
