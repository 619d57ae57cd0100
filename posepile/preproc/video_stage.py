"""One pass per video: decode once, and for the selected frames only detect, associate, crop and segment.

A recipe declares what to take from each video as a `VideoTask`: the video file and, per selected frame
index, the people to crop (`PersonTask`: a key, the example in full-frame coordinates with its ground-truth
box, the crop's path). `run_video_stage` then decodes each video once (frame i = the i-th decoded frame,
see posepile.util.video), runs the detector on the selected frames when the box rule needs detections,
chooses each person's box by the rule, renders the perspective-correct crops straight from the decoded
frame (no full-frame JPEG in between) and, on request, segments the crops. Full frames are written only
with `keep_frames` (for inspection or an external detector).

The video is the unit of sharding and resumption. Each finished video writes one result file (atomically,
after all its crops exist) that records a fingerprint of its inputs (the video's size and mtime, the task's
annotations and the stage options); a rerun skips videos whose fingerprint matches and redoes the others.
A video killed midway is redone on the next run; crops are deterministic, so the outputs are
byte-identical to an uninterrupted run. A broken or missing video is reported with its last good frame
while the other videos continue; the stage then fails with a one-line summary, unless `skip_broken`,
which records the video as skipped (and redoes it once the file changes).

Results are read back with `posepile.preproc.pipeline.load_crop_results(out_dir)` like any crop stage.
"""
import copy
import dataclasses
import functools
import hashlib
import logging
import re
from pathlib import Path

import numpy as np

from posepile.util import fileio
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)

MANIFEST_NAME = 'videos.json'
RESULT_VERSION = 1


@dataclasses.dataclass
class PersonTask:
    """One person in one frame. `example` is in full-frame coordinates (its bbox the ground-truth box, px);
    `others_world` optionally lists the other people's world joints (mm) of that frame, which segmentation
    keeps out of this person's mask. `joints2d` (J, 2) px, NaN = not counted: the projected joints a box rule
    with `min_joints_inside` counts in the detection; default: the example's world joints projected by its
    camera where they are inside the calibrated field and on the frame."""
    key: str
    example: object
    crop_relpath: str
    others_world: list = None
    joints2d: object = None


@dataclasses.dataclass
class VideoTask:
    """What to take from one video: {frame index: [PersonTask]}. `frame_relpath_pattern` (a format string
    taking the frame index, relative to the data root) says where `keep_frames` writes full frames;
    `horizontal_flip` mirrors each decoded frame first (SURREAL's left-handed render cameras)."""
    key: str
    video_path: str
    frames: dict
    frame_relpath_pattern: str = None
    horizontal_flip: bool = False


@dataclasses.dataclass(frozen=True)
class BoxRule:
    """How a person's box is chosen from the ground-truth box and the frame's detections.

    kind: 'gt' (no detection needed), 'hungarian' (one-to-one assignment over the frame's people, IoU >=
    min_iou; optional max_area_ratio / min_score filters, and min_joints_inside: the match also needs that
    many of the person's projected joints inside the detection box, the original's ego-dataset rule),
    'best_iou' / 'best_iou_hull' (per person, the detection of highest IoU >= min_iou, or its hull with the GT
    box), '3dhp' (MPI-INF-3DHP's union rule).
    Without a qualifying detection the GT box is used, or the person is dropped if not fallback_to_gt.
    The same rule serves the image-crop recipes: choose_frame_boxes.
    """
    kind: str = 'gt'
    min_iou: float = 0.5
    fallback_to_gt: bool = True
    max_area_ratio: float = None
    min_score: float = None
    min_joints_inside: int = None

    def __post_init__(self):
        if self.min_joints_inside is not None and self.kind != 'hungarian':
            raise ValueError(f"min_joints_inside is a rule of the 'hungarian' kind, not of {self.kind!r}")

    def as_options(self):
        """The rule as a dict for the stage options (and fingerprints): an unset min_joints_inside is left out,
        so that results made before the option existed stay valid."""
        options = dataclasses.asdict(self)
        if options['min_joints_inside'] is None:
            del options['min_joints_inside']
        return options

    def needs_detections(self):
        return self.kind != 'gt'


def result_path(out_dir, video_key):
    safe = re.sub(r'[^A-Za-z0-9._-]+', '_', video_key)
    digest = hashlib.sha1(video_key.encode()).hexdigest()[:8]  # keys that differ only in symbols stay apart
    return Path(out_dir) / 'videos' / f'{safe}-{digest}.pkl'


def _task_digest(task, options):
    """Hash of everything a video's outputs depend on besides the video file itself: the task's
    annotations (examples without their pixels, crop paths) and the stage options."""
    from posepile.util.fingerprint import digest
    people = [(frame, p.key, p.crop_relpath, p.others_world, p.example) + (() if p.joints2d is None else (p.joints2d,))
              for frame in sorted(task.frames) for p in task.frames[frame]]
    return digest(task.key, task.horizontal_flip, task.frame_relpath_pattern, options, people)


def video_fingerprint(path):
    """[size, mtime_ns] of a video file, or None if missing."""
    from posepile.util.fingerprint import file_stamp
    return file_stamp(path)


def _load_result(path):
    try:
        return fileio.load_pickle(path)
    except Exception as e:  # a damaged result is redone, never trusted
        logger.warning('%s is unreadable (%s): redoing that video', path, e)
        return None


_DETECTORS = {}


def _detector(spec):
    if spec not in _DETECTORS:
        from posepile.preproc.detection import make_detector
        _DETECTORS[spec] = make_detector(spec)
    return _DETECTORS[spec]


def projected_joints(example, imshape=None):
    """(J, 2) px of an example's world joints where they are inside its camera's calibrated field (and, with
    imshape (H, W), on the frame); NaN elsewhere. Empty without world joints or camera."""
    if example.world_coords is None or example.camera is None:
        return np.zeros((0, 2))
    camera = example.camera
    points = camera.world_to_camera(np.asarray(example.world_coords, np.float64))
    inside = camera.is_in_field(points, imshape=imshape)
    with np.errstate(invalid='ignore'):
        pixels = camera.camera_to_image(np.where(inside[:, np.newaxis], points, [0.0, 0.0, 1.0]))
    return np.where(inside[:, np.newaxis], pixels, np.nan)


def choose_boxes(people, detections, rule, imshape=None):
    """Boxes (float32 (4,) or None = drop) for the people (PersonTask) of one frame of shape imshape given its
    detections (N, 5)."""
    gt_boxes = [p.example.bbox for p in people]
    joints2d = None
    if rule.min_joints_inside is not None:
        joints2d = [projected_joints(p.example, imshape) if p.joints2d is None else p.joints2d for p in people]
    return choose_frame_boxes(gt_boxes, detections, rule, joints2d)


def choose_frame_boxes(gt_boxes, detections, rule, joints2d=None):
    """Boxes (float32 (4,) or None = drop) for the people of one image by a BoxRule: gt_boxes per person
    [x, y, w, h] px, detections (N, 5) of the image, joints2d per person (J, 2) px (NaN = not counted; needed
    for rule.min_joints_inside). For video and image-crop stages alike."""
    from posepile.preproc.association import associate_boxes, choose_box
    gt_boxes = np.array([np.asarray(box, np.float64)[:4] for box in gt_boxes]).reshape(-1, 4)
    if not rule.needs_detections():
        return [box.astype(np.float32) for box in gt_boxes]
    detections = np.asarray(detections, np.float32).reshape(-1, 5)
    if rule.kind == 'hungarian':
        matches = associate_boxes(gt_boxes, detections, min_iou=rule.min_iou, max_area_ratio=rule.max_area_ratio,
                                  min_score=rule.min_score, joints2d=joints2d, min_joints_inside=rule.min_joints_inside)
        return [detections[m, :4].copy() if m >= 0 else (gt.astype(np.float32) if rule.fallback_to_gt else None)
                for gt, m in zip(gt_boxes, matches)]
    return [choose_box(gt, detections, rule=rule.kind, min_iou=rule.min_iou, fallback_to_gt=rule.fallback_to_gt)
            for gt in gt_boxes]


def _process_video(task, out_dir, data_root, options):
    """Crop one video; returns a summary dict. Writes the result file only when the video is complete."""
    from posepile.preproc.cropping import CropError, limit_threads_for_worker, make_efficient_example
    from posepile.util import improc
    from posepile.util.video import VideoReadError, iter_frames
    limit_threads_for_worker()
    out_path = result_path(out_dir, task.key)
    video_path = Path(task.video_path)
    if not video_path.is_absolute():
        video_path = Path(data_root) / video_path
    fingerprint = {'video': video_fingerprint(video_path), 'task': _task_digest(task, options),
                   'version': RESULT_VERSION}
    # Crops already on disk are reused only when they were made from the same inputs: after a kill with
    # unchanged inputs (byte-identical anyway); after any change they are rendered again.
    started_path = out_path.with_name(out_path.name + '.started')
    reuse_crops = True
    if out_path.exists():
        previous = _load_result(out_path)
        if previous is not None and previous.get('fingerprint') == fingerprint:
            return {'key': task.key, 'status': 'done before', 'n': len(previous['examples'])}
        logger.info('%s: inputs or options changed since %s was written: redoing it', task.key, out_path)
        reuse_crops = False
    if started_path.exists():
        try:
            reuse_crops &= fileio.load_json(started_path) == fingerprint
        except (OSError, ValueError):
            reuse_crops = False
    fileio.save_json(fingerprint, started_path)

    rule = BoxRule(**options['box_rule'])
    detector = _detector(options['detector']) if rule.needs_detections() else None
    examples, detections_per_frame = [], {}
    stats = {'people': 0, 'matched_to_detection': 0, 'dropped_no_detection': 0, 'outside_image': 0}
    try:
        for frame_index, frame in iter_frames(video_path, sorted(task.frames)):
            if task.horizontal_flip:
                frame = np.ascontiguousarray(frame[:, ::-1])
            if options['keep_frames'] and task.frame_relpath_pattern:
                frame_path = Path(data_root) / task.frame_relpath_pattern.format(frame_index)
                if not improc.is_readable_image(frame_path):
                    improc.write_jpeg_atomic(frame_path, frame, 95)
            people = task.frames[frame_index]
            detections = detector.detect(frame) if detector is not None else np.zeros((0, 5), np.float32)
            if detector is not None:
                detections_per_frame[frame_index] = detections
            for person, box in zip(people, choose_boxes(people, detections, rule, frame.shape[:2])):
                stats['people'] += 1
                if box is None:
                    stats['dropped_no_detection'] += 1
                    continue
                gt_box = np.asarray(person.example.bbox, np.float32)[:4]
                stats['matched_to_detection'] += int(detector is not None and not np.array_equal(box, gt_box))
                example = copy.copy(person.example)
                example.image = frame
                example.bbox = np.asarray(box, np.float32)
                try:
                    cropped = make_efficient_example(example, person.crop_relpath, data_root=data_root,
                                                     skip_existing=reuse_crops, **options['crop'])
                except CropError as e:
                    stats['outside_image'] += 1
                    logger.debug('%s: %s', person.key, e)
                    continue
                examples.append((person.key, cropped, person.others_world))
    except (VideoReadError, FileNotFoundError) as e:
        error = {'key': task.key, 'status': 'broken', 'video': str(video_path), 'error': str(e),
                 'last_good_frame': getattr(e, 'last_good_frame', -1)}
        if options['skip_broken']:  # recorded as skipped; the fingerprint redoes it once the file changes
            fileio.save_pickle({'key': task.key, 'fingerprint': fingerprint, 'examples': [], 'broken': error,
                                'stats': stats, 'detections': {}}, out_path)
            started_path.unlink(missing_ok=True)
        return error

    if options['segmenter'] and examples:
        from posepile.preproc.segmentation import segment_examples
        others = [o for _, _, o in examples]
        rles = segment_examples([ex for _, ex, _ in examples], options['segmenter'], options['joint_edges'],
                                data_root=data_root, desc=None,
                                other_people_world=others if any(o is not None for o in others) else None)
        for (_, example, _), rle in zip(examples, rles):
            example.mask = rle
    result = {'key': task.key, 'fingerprint': fingerprint, 'examples': [(k, ex) for k, ex, _ in examples],
              'broken': None, 'stats': stats, 'detections': detections_per_frame}
    fileio.save_pickle(result, out_path)
    started_path.unlink(missing_ok=True)
    return {'key': task.key, 'status': 'done', 'n': len(examples), 'stats': stats}


class BrokenVideosError(InputError):
    """Some videos could not be decoded; the message lists them (one line)."""


def run_video_stage(tasks, out_dir, *, data_root=None, shard=None, n_workers=None, detector_spec=None,
                    box_rule=BoxRule(), segmenter_spec=None, joint_edges=None, keep_frames=False,
                    skip_broken=None, **crop_options):
    """Process this shard's videos (every n-th of the tasks sorted by key); returns the summaries.

    tasks: list of VideoTask (keys unique). out_dir: where the per-video results and the manifest go.
    detector_spec: a posepile.preproc.detection spec, needed when box_rule needs detections
    (default: $POSEPILE_DETECTOR or 'hog'). segmenter_spec: segment the crops ('grabcut', 'onnx:...'),
    with the skeleton's joint_edges as seeds. crop_options go to make_efficient_example.
    Raises BrokenVideosError listing broken videos at the end, unless skip_broken (default: the
    SKIP_BROKEN=1 environment setting).
    """
    import os

    from posepile.util.parallel import parallel_map, parse_shard, shard_items
    if data_root is None:
        from posepile.paths import data_root as get_data_root
        data_root = get_data_root()
    keys = [task.key for task in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError('video task keys must be unique')
    if box_rule.needs_detections() and detector_spec is None:
        detector_spec = os.environ.get('POSEPILE_DETECTOR', 'hog')
    from posepile.preproc.pipeline import skip_broken_default
    skip_broken = skip_broken_default(skip_broken)
    out_dir = Path(out_dir)
    _write_manifest(out_dir, sorted(keys))
    index, count = parse_shard(shard)
    my_tasks = shard_items(sorted(tasks, key=lambda t: t.key), index, count)
    options = {'box_rule': box_rule.as_options(), 'detector': detector_spec if box_rule.needs_detections()
               else None, 'segmenter': segmenter_spec, 'joint_edges': joint_edges, 'keep_frames': keep_frames,
               'skip_broken': skip_broken, 'crop': crop_options}
    worker = functools.partial(_process_video, out_dir=out_dir, data_root=str(data_root), options=options)
    summaries = parallel_map(worker, my_tasks, n_workers=n_workers, desc=f'videos {index + 1}/{count}')
    broken = [s for s in summaries if s['status'] == 'broken']
    done = [s for s in summaries if s['status'] == 'done']
    logger.info('videos %d/%d: %d cropped now, %d done before, %d broken; %d crops written now', index + 1,
                count, len(done), len(summaries) - len(done) - len(broken), len(broken),
                sum(s['n'] for s in done))
    for s in broken:
        logger.error('%s', s['error'])
    if broken and not skip_broken:
        listing = '; '.join(f'{s["video"]} (last good frame {s["last_good_frame"]})' for s in broken[:5])
        more = f' and {len(broken) - 5} more' if len(broken) > 5 else ''
        raise BrokenVideosError(f'{len(broken)} of {len(my_tasks)} videos are broken or missing: {listing}{more}; '
                                'fix or restore them and rerun, or pass --skip-broken to build the rest')
    return summaries


def _write_manifest(out_dir, keys):
    path = Path(out_dir) / MANIFEST_NAME
    content = {'video_keys': keys}
    if path.exists():
        try:
            if fileio.load_json(path) == content:
                return
        except (OSError, ValueError):
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fileio.save_json(content, path)


def is_video_stage_dir(out_dir):
    return (Path(out_dir) / MANIFEST_NAME).exists()


def load_video_stage_results(out_dir):
    """All (key, cropped example) pairs of a finished video stage, ordered by key; a clear error listing
    the videos that have not finished. Videos skipped as broken are logged."""
    out_dir = Path(out_dir)
    keys = fileio.load_json(out_dir / MANIFEST_NAME)['video_keys']
    missing = [k for k in keys if not result_path(out_dir, k).exists()]
    if missing:
        shown = ', '.join(missing[:5]) + (f' and {len(missing) - 5} more' if len(missing) > 5 else '')
        raise FileNotFoundError(f'{out_dir}: {len(missing)} of {len(keys)} videos have not been processed '
                                f'({shown}): run the video stage (all shards) first')
    results, skipped = [], []
    for key in keys:
        result = fileio.load_pickle(result_path(out_dir, key))
        if result.get('broken'):
            skipped.append(result['broken'])
        results.extend(result['examples'])
    for s in skipped:
        logger.warning('skipped as broken: %s', s['error'])
    return sorted(results, key=lambda item: item[0])


def video_stage_report(out_dir):
    """Summed association statistics and the list of skipped videos, e.g. for a recipe's log or JSON."""
    out_dir = Path(out_dir)
    keys = fileio.load_json(out_dir / MANIFEST_NAME)['video_keys']
    totals, skipped = {}, []
    for key in keys:
        path = result_path(out_dir, key)
        if not path.exists():
            continue
        result = fileio.load_pickle(path)
        for name, value in result['stats'].items():
            totals[name] = totals.get(name, 0) + value
        if result.get('broken'):
            skipped.append(result['broken'])
    return {'stats': totals, 'skipped_videos': skipped}
