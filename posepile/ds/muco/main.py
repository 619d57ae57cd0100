"""MuCo-3DHP: multi-person composites of the MPI-INF-3DHP training set, made by our own code.

The published method (Mehta et al., "Single-Shot Multi-Person 3D Pose Estimation From Monocular RGB", 3DV
2018): frames of different subjects filmed by the same camera of the same studio are layered into one image
by depth, each person cut out with its chroma-key foreground mask (and its chair where the capture had one).
People keep their original pixel positions, so every person keeps the camera of its own sequence.

Here the inputs are MuCo's own source crops (the `sources` stage): the frames of the tdhp selection (S1-S8,
cameras 0-2 and 4-8, every 5th frame with all 17 tdhp joints in view, adaptive 100 mm per camera) cropped
straight from the 3DHP videos with all 28 joints and the FGmasks person masks reprojected into them, WITHOUT
the 3DHP colour correction of the tdhp/tdhp_full training crops (the original's MuCo composites come from
the uncorrected frames); plus the full-frame chair masks that the tdhp `masks` stage stored. Each crop is
warped back into the full-frame pixel grid of its camera (exact: the crop camera only rotates and rescales
the original camera about the same optical centre), on a canvas of CANVAS_SCALE x the frame size.

Per composite i (independent of sharding: a NumPy generator seeded with (SEED, i)):
  1. a camera index, uniformly among those with candidates;
  2. N_PEOPLE examples of that camera: from distinct subjects while possible, then distinct frames;
  3. painter's order: farthest first by mean camera-space depth of the valid joints (mm);
  4. each person's layer = (person mask | chair mask) within the crop's footprint, pasted over a grey canvas;
  5. visible person mask = person mask minus the layers of all nearer people; kept if it covers at least
     MIN_VISIBLE_FRACTION of the person mask (the composites' rule "occlusion < 0.75" of the facts doc);
  6. box = visible-mask box intersected with the joint box (projected joints, clipped to the canvas, x 1.05),
     as the original; with a detector: Hungarian association (IoU > 0.1, det area < 2x box, score > 0.1)
     and the detection replaces the box (unmatched people dropped), as the original's MuCo stage 2;
  7. every kept person is cropped from the in-memory composite like any example (posepile.preproc.cropping)
     with the composite's overall person mask (union of all people's visible masks) as its mask.
Joints: the 28 3DHP joints in MuCo's order and names (`thor` = spi3), mm, world frame of each person's sequence.
"""
import functools
import logging
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline

logger = logging.getLogger(__name__)

NAME = 'muco'
JOINT_NAMES = ('thor,spi4,spi2,lcla,lhan,rcla,rhan,lfoo,ltoe,rfoo,rtoe,htop,neck,rsho,relb,rwri,lsho,lelb,'
               'lwri,rhip,rkne,rank,lhip,lkne,lank,spin,head,pelv')
JOINT_EDGES = ('htop-head-neck-lcla-lsho-lelb-lwri-lhan,neck-rcla-rsho-relb-rwri-rhan,'
               'neck-spi4-thor-spi2-spin-pelv-lhip-lkne-lank-lfoo-ltoe,pelv-rhip-rkne-rank-rfoo-rtoe')
DEFAULT_COUNT = 200_000
CHUNK_SIZE = 500  # composites per result file (the unit of sharding and resumption)
SEED = 0
N_PEOPLE = 4
CANVAS_SCALE = 0.5  # canvas = full frame x 0.5 (2048 -> 1024 px): about the crops' resolution
BACKGROUND_RGB = (128, 128, 128)
JOINT_BOX_EXPANSION = 1.05
MIN_VISIBLE_FRACTION = 0.25
DETECTION_RULE = dict(min_iou=0.1, max_area_ratio=2.0, min_score=0.1)


class MuCoInputError(ValueError):
    pass


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


# ------------------------------------------------------------------------------------------------
# Inputs: uncorrected 28-joint crops of the 3DHP training frames
SOURCES_CROP_ROOT = 'muco_downscaled/sources'


def sources_dir(data_root=None):
    return work_dir(data_root) / 'sources'


@pipeline.cli_options(pipeline.SKIP_BROKEN_OPTION)
def sources_stage(shard=None, n_workers=None, skip_broken=None, data_root=None):
    """MuCo's source crops: the tdhp selection's frames (tdhp.make_video_tasks) with all 28 raw 3DHP joints,
    the box of the 28 joints x 1.05, the FGmasks person masks, and no colour correction; one pass per video,
    sharded and resumable like the tdhp video stage. Needs tdhp's select-frames and masks stages."""
    from posepile.ds.tdhp import main as tdhp
    tasks = tdhp.make_video_tasks(data_root, joint_order=None, crop_root=SOURCES_CROP_ROOT)
    pipeline.dataset_video_stage(NAME, tasks, shard, n_workers, data_root, subdir='sources',
                                 skip_broken=skip_broken)


def load_candidates(data_root=None):
    """{camera index: [candidate dict]} of the source crops (sources stage) that have a person mask, sorted by
    key. A candidate: key, subject, sequence, camera, frame, the cropped example (crop path, crop camera,
    28 joints in the raw 3DHP order, mm)."""
    crops = sources_dir(data_root)
    if not crops.exists():
        raise FileNotFoundError(f'{crops}: no MuCo source crops; run the select-frames and masks stages of '
                                'posepile/ds/tdhp/main.sh, then the sources stage of posepile/ds/muco/main.sh')
    by_camera = {}
    for key, example in pipeline.load_crop_results(crops):
        _, subject, sequence, camera, frame = key.split('/')
        if len(example.world_coords) != 28:
            raise MuCoInputError(f'{crops}: {key} has {len(example.world_coords)} joints, expected the 28 of '
                                 '3DHP: rerun the sources stage')
        if example.mask is None:
            continue
        by_camera.setdefault(int(camera), []).append(dict(
            key=key, subject=subject, sequence=sequence, camera=int(camera), frame=int(frame), example=example))
    if not by_camera:
        raise MuCoInputError(f'{crops}: no 3DHP training example has a person mask (FGmasks missing?)')
    return {c: sorted(v, key=lambda d: d['key']) for c, v in sorted(by_camera.items())}


def plan_composite(index, candidates, seed=SEED):
    """The candidates (list of dicts) composited in composite `index`: one camera, N_PEOPLE people from
    distinct subjects while there are enough, then distinct examples. Deterministic in (seed, index)."""
    rng = np.random.default_rng([seed, index])
    cameras = sorted(c for c, v in candidates.items() if len(v) >= 1)
    pool = candidates[cameras[rng.integers(len(cameras))]]
    subjects = sorted({c['subject'] for c in pool})
    chosen_subjects = rng.permutation(subjects)[:N_PEOPLE]
    chosen = []
    for subject in chosen_subjects:
        own = [i for i, c in enumerate(pool) if c['subject'] == subject]
        chosen.append(own[rng.integers(len(own))])
    rest = [i for i in range(len(pool)) if i not in chosen]
    chosen += [rest[i] for i in rng.permutation(len(rest))[:N_PEOPLE - len(chosen)]]
    return [pool[i] for i in chosen]


@functools.lru_cache(64)
def _sequence_info(raw_root, subject, sequence):
    from posepile.ds.tdhp import main as tdhp
    path = Path(raw_root) / subject / sequence / 'camera.calibration'
    return tdhp.load_train_cameras(path), tdhp._train_image_sizes(path)


@functools.lru_cache(None)
def _chair_masks(data_root, subject, sequence, camera):
    """{frame: full-frame chair RLE} of one camera, or {} (only the chairs are kept in memory)."""
    from posepile.ds.tdhp import main as tdhp
    return tdhp.load_masks(data_root, subject, sequence, camera).get('chair') or {}


def _canvas_mask(rle, canvas_shape):
    """A full-frame RLE resized onto the canvas (area average, at least half covered), or all False for None."""
    import cv2
    from posepile.util import masks
    if rle is None:
        return np.zeros(canvas_shape, bool)
    # decode gives a Fortran-ordered array: resize its (C-ordered) transpose, then transpose the small result
    transposed = np.ascontiguousarray(masks.decode(rle).T).view(np.uint8) * np.uint8(255)
    return (cv2.resize(transposed, canvas_shape, interpolation=cv2.INTER_AREA) > 127).T


def _warp_into_canvas(image, homography, canvas_shape, mask=None):
    """The crop's pixels on the canvas, its footprint (where it has pixels) and, if given, its mask (crop px)
    warped likewise; only the footprint's bounding rectangle is warped. homography: canvas px -> crop px."""
    import cv2
    height, width = image.shape[:2]
    corners = np.array([[-0.5, -0.5, 1], [width - 0.5, -0.5, 1], [width - 0.5, height - 0.5, 1],
                        [-0.5, height - 0.5, 1]]).T
    mapped = np.linalg.inv(homography) @ corners
    footprint = (mapped[:2] / mapped[2]).T
    pixels = np.zeros(canvas_shape + (3,), np.uint8)
    covered = np.zeros(canvas_shape, np.uint8)
    warped_mask = np.zeros(canvas_shape, bool)
    if np.any(mapped[2] <= 0):
        return pixels, covered.astype(bool), warped_mask
    x0, y0 = np.maximum(np.floor(footprint.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(footprint.max(axis=0)).astype(int) + 1, canvas_shape[::-1])
    if x1 <= x0 or y1 <= y0:
        return pixels, covered.astype(bool), warped_mask
    shifted = homography @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    size = (int(x1 - x0), int(y1 - y0))
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    pixels[y0:y1, x0:x1] = cv2.warpPerspective(image, shifted, size, flags=flags)
    if mask is not None:
        warped_mask[y0:y1, x0:x1] = cv2.warpPerspective(mask.view(np.uint8) * np.uint8(255), shifted, size,
                                                        flags=flags) > 127
    cv2.fillConvexPoly(covered, np.round(footprint * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    return pixels, covered.astype(bool), warped_mask


def _layer(candidate, data_root, canvas_shape):
    """One person's layer on the canvas: its pixels, person mask (the crop's FGmasks mask), chair mask (the
    stored full-frame ChairMasks mask), canvas camera and joints (raw 3DHP order, mm)."""
    from posepile.ds.tdhp import main as tdhp
    from posepile.util import improc, masks
    root = tdhp.raw_root(data_root)
    cameras, _ = _sequence_info(str(root), candidate['subject'], candidate['sequence'])
    canvas_camera = cameras[candidate['camera']].copy().scale_output(CANVAS_SCALE)
    crop = candidate['example']
    image = improc.imread_rgb(Path(data_root) / crop.image_path)
    # canvas pixel -> crop pixel (same optical centre: a homography)
    homography = (crop.camera.intrinsic_matrix @ crop.camera.R @ canvas_camera.R.T
                  @ np.linalg.inv(canvas_camera.intrinsic_matrix))
    crop_mask = np.ascontiguousarray(masks.decode(crop.mask))
    pixels, covered, person = _warp_into_canvas(image, homography, canvas_shape, crop_mask)
    chairs = _chair_masks(str(data_root), candidate['subject'], candidate['sequence'], candidate['camera'])
    chair = _canvas_mask(chairs.get(candidate['frame']), canvas_shape) & covered
    world = np.asarray(crop.world_coords, np.float64)
    depth = np.nanmean(canvas_camera.world_to_camera(world)[:, 2])
    return dict(pixels=pixels, person=person & covered, chair=chair, camera=canvas_camera, world=world,
                depth=depth)


def _joint_box(camera, world, canvas_shape):
    from posepile.util import boxes
    box = boxes.intersection(boxes.bb_of_points(camera.world_to_image(world)), boxes.full_box(canvas_shape))
    return boxes.expand(box, JOINT_BOX_EXPANSION)


def composite(index, candidates, data_root, seed=SEED, canvas_shape=None):
    """Composite `index`: returns (canvas RGB uint8, overall person mask, people), people ordered far to near,
    each a dict with the candidate, depth_mm, visible mask, visible_fraction, box (canvas px, or None)."""
    from posepile.ds.tdhp import main as tdhp
    from posepile.util import boxes
    plan = plan_composite(index, candidates, seed)
    if canvas_shape is None:
        root = tdhp.raw_root(data_root)
        _, sizes = _sequence_info(str(root), plan[0]['subject'], plan[0]['sequence'])
        width, height = sizes[plan[0]['camera']]
        canvas_shape = (int(round(height * CANVAS_SCALE)), int(round(width * CANVAS_SCALE)))
    layers = [dict(_layer(c, data_root, canvas_shape), candidate=c) for c in plan]
    layers.sort(key=lambda layer: -layer['depth'])  # painter's order: farthest first
    canvas = np.empty(canvas_shape + (3,), np.uint8)
    canvas[:] = BACKGROUND_RGB
    for layer in layers:
        alpha = layer['person'] | layer['chair']
        canvas[alpha] = layer['pixels'][alpha]
    nearer = np.zeros(canvas_shape, bool)
    people = []
    for layer in reversed(layers):  # nearest first: accumulate what occludes the farther ones
        visible = layer['person'] & ~nearer
        area = layer['person'].sum()
        fraction = float(visible.sum() / area) if area else 0.0
        box = None
        if fraction >= MIN_VISIBLE_FRACTION:
            box = boxes.intersection(boxes.bb_of_mask(visible),
                                     _joint_box(layer['camera'], layer['world'], canvas_shape))
            box = box if box[2] >= 1 and box[3] >= 1 else None
        people.append(dict(candidate=layer['candidate'], depth_mm=float(layer['depth']), visible=visible,
                           visible_fraction=fraction, box=box, camera=layer['camera'], world=layer['world']))
        nearer |= layer['person'] | layer['chair']
    people.reverse()
    overall = np.zeros(canvas_shape, bool)
    for person in people:
        overall |= person['visible']
    return canvas, overall, people


def crop_relpath(index, rank):
    return f'muco_downscaled/{index // 1000:04d}/{index:06d}_{rank}.jpg'


def _make_examples(index, candidates, data_root, detector=None):
    """The cropped examples of composite `index` and its origins (for checks): [(key, example)], origins."""
    from posepile.datasets3d import Pose3DExample
    from posepile.ds.tdhp import main as tdhp
    from posepile.preproc.association import associate_boxes
    from posepile.preproc.cropping import CropError, make_efficient_example
    from posepile.util import masks
    canvas, overall, people = composite(index, candidates, data_root)
    boxes = [p['box'] for p in people]
    if detector is not None:
        gt = [b if b is not None else np.zeros(4, np.float32) for b in boxes]
        detections = np.asarray(detector.detect(canvas), np.float32).reshape(-1, 5)
        matches = associate_boxes(np.array(gt), detections, **DETECTION_RULE)
        boxes = [detections[m, :4] if m >= 0 and b is not None else None for b, m in zip(boxes, matches)]
    overall_rle = masks.encode(overall)
    results, origins = [], []
    for rank, (person, box) in enumerate(zip(people, boxes)):
        origins.append(dict(source=person['candidate']['key'], depth_mm=person['depth_mm'],
                            visible_fraction=person['visible_fraction'], kept=box is not None))
        if box is None:
            continue
        world = person['world'][tdhp.FULL_JOINT_ORDER]
        univ = person['candidate']['example'].univ_coords
        univ = None if univ is None else np.asarray(univ)[tdhp.FULL_JOINT_ORDER]
        example = Pose3DExample(f'muco/{index:06d}.jpg', world, box, person['camera'], mask=overall_rle, image=canvas,
                                univ_coords=univ,
                                scene_name=f'{person["candidate"]["subject"]}/{person["candidate"]["sequence"]}')
        try:
            cropped = make_efficient_example(example, crop_relpath(index, rank), data_root=data_root,
                                             skip_existing=False)
        except CropError as e:
            logger.debug('composite %d person %d: %s', index, rank, e)
            origins[-1]['kept'] = False
            continue
        cropped.image = None
        results.append((f'0/{index:06d}/{rank}', cropped))
    return results, origins


# ------------------------------------------------------------------------------------------------
# The composite stage: chunks of CHUNK_SIZE composites, sharded and resumable
def chunk_path(data_root, chunk):
    return work_dir(data_root) / 'chunks' / f'chunk_{chunk:05d}.pkl'


def _candidates_digest(candidates):
    from posepile.util.fingerprint import digest
    return digest([(c['key'], c['example'].image_path, c['example'].world_coords) for v in candidates.values()
                   for c in v])


def _process_chunk(chunk, count, chunk_size, data_root, detector_spec, digest_value):
    from posepile.util import fileio
    out_path = chunk_path(data_root, chunk)
    indices = list(range(chunk * chunk_size, min((chunk + 1) * chunk_size, count)))
    fingerprint = dict(seed=SEED, indices=[indices[0], indices[-1]], inputs=digest_value, detector=detector_spec,
                       scale=CANVAS_SCALE, people=N_PEOPLE)
    if out_path.exists():
        try:
            if fileio.load_pickle(out_path)['fingerprint'] == fingerprint:
                return 0
        except Exception:  # noqa: BLE001 - a damaged result is redone
            pass
    candidates = _worker_candidates(str(data_root))
    detector = None
    if detector_spec:
        from posepile.preproc.detection import make_detector
        detector = make_detector(detector_spec)
    examples, origins = [], {}
    for index in indices:
        made, origins[index] = _make_examples(index, candidates, data_root, detector)
        examples += made
    fileio.save_pickle(dict(fingerprint=fingerprint, examples=examples, origins=origins), out_path)
    return len(indices)


@functools.lru_cache(1)
def _worker_candidates(data_root):
    return load_candidates(data_root)


@pipeline.cli_options(
    ('--count', dict(type=int, default=None,
                     help=f'number of composites (default {DEFAULT_COUNT}, or $MUCO_COUNT)')),
    ('--chunk-size', dict(type=int, default=CHUNK_SIZE, help='composites per result file (unit of sharding)')),
    pipeline.DETECTOR_OPTION)
def composite_stage(shard=None, n_workers=None, count=None, chunk_size=CHUNK_SIZE, detector_spec=None,
                    data_root=None):
    """Composites and their person crops, CHUNK_SIZE per result file; `--shard i/n` takes every n-th chunk,
    finished chunks with the same inputs are skipped (a rerun is byte-identical)."""
    import os

    from posepile.paths import data_root as get_data_root
    from posepile.util import fileio
    from posepile.util.parallel import parallel_map, parse_shard, shard_items
    data_root = Path(data_root or get_data_root())
    count = int(count or os.environ.get('MUCO_COUNT') or DEFAULT_COUNT)
    detector_spec = pipeline.configured_detector(detector_spec)
    candidates = _worker_candidates(str(data_root))
    logger.info('muco: %d candidates over cameras %s', sum(len(v) for v in candidates.values()), list(candidates))
    n_chunks = -(-count // chunk_size)
    fileio.save_json({'count': count, 'chunks': n_chunks, 'chunk_size': chunk_size},
                     work_dir(data_root) / 'manifest.json')
    index, n_shards = parse_shard(shard)
    worker = functools.partial(_process_chunk, count=count, chunk_size=chunk_size, data_root=str(data_root),
                               detector_spec=detector_spec, digest_value=_candidates_digest(candidates))
    done = parallel_map(worker, shard_items(list(range(n_chunks)), index, n_shards), n_workers=n_workers,
                        desc='muco chunks')
    logger.info('muco shard %d/%d: %d composites made now', index + 1, n_shards, sum(done))


def load_results(data_root=None):
    """(examples sorted by key, {composite index: origins}) of all chunks; a clear error for missing chunks."""
    from posepile.util import fileio
    manifest_path = work_dir(data_root) / 'manifest.json'
    if not manifest_path.exists():
        raise FileNotFoundError(f'{manifest_path} not found: run the composite stage of posepile/ds/muco/main.sh')
    n_chunks = fileio.load_json(manifest_path)['chunks']
    missing = [c for c in range(n_chunks) if not chunk_path(data_root, c).exists()]
    if missing:
        raise FileNotFoundError(f'{work_dir(data_root)}: {len(missing)} of {n_chunks} composite chunks are missing '
                                f'(first: {missing[0]}); run the composite stage (all shards)')
    examples, origins = [], {}
    for chunk in range(n_chunks):
        result = fileio.load_pickle(chunk_path(data_root, chunk))
        examples += result['examples']
        origins.update(result['origins'])
    return sorted(examples, key=lambda item: item[0]), origins


def make_dataset(data_root=None):
    """MuCo-3DHP: the composites' person crops (TRAIN), 28 joints in MuCo's order, overall person masks."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    examples, _ = load_results(data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), [ex for _, ex in examples], None, None)


def assemble(data_root=None):
    """The dataset for get_dataset('muco')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.muco.main', 'MuCo-3DHP stages', {
        'sources': sources_stage, 'composite': composite_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
