"""The one-pass video stage: crops from decoded frames, association rules, resumption by fingerprint, broken
videos reported with the others finished."""
import numpy as np
import pytest

from posepile.datasets3d import Pose3DExample
from posepile.preproc import video_stage
from posepile.preproc.pipeline import load_crop_results
from posepile.preproc.video_stage import BoxRule, BrokenVideosError, PersonTask, VideoTask, run_video_stage
from posepile.util import improc
from posepile.util.camera import Camera
from posepile.util.video import write_video
from tests.markers import dot_errors

SIZE = (240, 320)
CAMERA = Camera(intrinsic_matrix=[[300, 0, 159.5], [0, 300, 119.5], [0, 0, 1]], world_up=(0, -1, 0))


def _joints(frame_index):
    """A 6-joint 'person' 3 m away drifting right with the frame index (mm)."""
    base = np.array([[0, -600, 0], [0, -300, 0], [-150, 0, 0], [150, 0, 0], [-100, 500, 0], [100, 500, 0]], float)
    return base + [frame_index * 12.0 - 300, 0, 3000]


def _write_video(path, n_frames):
    """Frames with bright dots at the projected joints (so crops can be checked against their cameras)."""
    ys, xs = np.mgrid[:SIZE[0], :SIZE[1]]
    frames = []
    for i in range(n_frames):
        canvas = np.full(SIZE, 40.0)
        for u, v in CAMERA.world_to_image(_joints(i)):
            canvas += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 1.5 ** 2))
        frames.append(np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
    write_video(path, frames, fps=25, quality=10)


def _task(key, path, frames):
    from posepile.util import boxes
    people = {}
    for f in frames:
        world = _joints(f)
        box = boxes.expand(boxes.bb_of_points(CAMERA.world_to_image(world)), 1.3)
        example = Pose3DExample(f'vid/{key}/{f:06d}.jpg', world, box, CAMERA)
        people[f] = [PersonTask(f'{key}/{f:06d}', example, f'crops/{key}/{f:06d}.jpg')]
    return VideoTask(key, str(path), people, frame_relpath_pattern=f'frames/{key}/{{:06d}}.jpg')


@pytest.fixture
def videos(tmp_path):
    for name in ('a', 'b', 'c'):
        _write_video(tmp_path / f'{name}.mp4', 30)
    return tmp_path


def test_crops_come_straight_from_the_decoded_frames(videos):
    tasks = [_task(name, videos / f'{name}.mp4', range(0, 30, 7)) for name in ('a', 'b')]
    run_video_stage(tasks, videos / 'work', data_root=videos, n_workers=1)
    results = load_crop_results(videos / 'work')
    assert [k for k, _ in results] == sorted(f'{n}/{f:06d}' for n in 'ab' for f in range(0, 30, 7))
    errors = []
    for _, example in results:
        errors += dot_errors(videos / example.image_path, example.camera.world_to_image(example.world_coords), 4)
    assert len(errors) > 30 and np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
    assert not (videos / 'frames').exists()  # no full frames without keep_frames


def test_rerun_skips_unchanged_videos_and_redoes_changed_ones(videos):
    tasks = [_task(name, videos / f'{name}.mp4', range(0, 30, 10)) for name in ('a', 'b')]
    summaries = run_video_stage(tasks, videos / 'work', data_root=videos, n_workers=1)
    assert [s['status'] for s in summaries] == ['done', 'done']
    assert [s['status'] for s in run_video_stage(tasks, videos / 'work', data_root=videos, n_workers=1)] == \
        ['done before', 'done before']
    # a changed annotation (another frame selected in video b) or a changed video file redoes only that video
    tasks[1] = _task('b', videos / 'b.mp4', range(0, 30, 5))
    assert [s['status'] for s in run_video_stage(tasks, videos / 'work', data_root=videos, n_workers=1)] == \
        ['done before', 'done']
    _write_video(videos / 'a.mp4', 31)
    assert [s['status'] for s in run_video_stage(tasks, videos / 'work', data_root=videos, n_workers=1)] == \
        ['done', 'done before']
    # changed options redo everything; keep_frames writes the selected full frames
    run_video_stage(tasks, videos / 'work', data_root=videos, n_workers=1, keep_frames=True)
    assert len(list((videos / 'frames' / 'b').glob('*.jpg'))) == 6
    # a damaged result file is redone, never trusted
    video_stage.result_path(videos / 'work', 'a').write_bytes(b'garbage')
    assert run_video_stage(tasks, videos / 'work', data_root=videos, n_workers=1)[0]['status'] == 'done'


def test_broken_video_is_reported_and_the_others_finish(videos):
    data = (videos / 'b.mp4').read_bytes()
    (videos / 'b.mp4').write_bytes(data[:len(data) // 2])
    tasks = [_task(name, videos / f'{name}.mp4', range(0, 30, 6)) for name in ('a', 'b', 'c')]
    with pytest.raises(BrokenVideosError, match=r'1 of 3 videos .*b\.mp4 \(last good frame \d+\)'):
        run_video_stage(tasks, videos / 'work', data_root=videos, n_workers=2)
    assert video_stage.result_path(videos / 'work', 'a').exists()
    assert video_stage.result_path(videos / 'work', 'c').exists()
    assert not video_stage.result_path(videos / 'work', 'b').exists()
    with pytest.raises(FileNotFoundError, match='1 of 3 videos have not been processed'):
        load_crop_results(videos / 'work')
    run_video_stage(tasks, videos / 'work', data_root=videos, n_workers=1, skip_broken=True)
    assert {k.split('/')[0] for k, _ in load_crop_results(videos / 'work')} == {'a', 'c'}
    # the repaired file is picked up by a plain rerun
    (videos / 'b.mp4').write_bytes(data)
    run_video_stage(tasks, videos / 'work', data_root=videos, n_workers=1, skip_broken=True)
    assert {k.split('/')[0] for k, _ in load_crop_results(videos / 'work')} == {'a', 'b', 'c'}


class _ListDetector:
    """Returns fixed detections, whatever the frame."""

    def __init__(self, detections):
        self.detections = np.asarray(detections, np.float32).reshape(-1, 5)

    def detect(self, image):
        assert image.shape == (*SIZE, 3) and image.dtype == np.uint8
        return self.detections


def test_box_rules_with_detections(videos, monkeypatch):
    task = _task('a', videos / 'a.mp4', [0, 12])
    gt = {f: np.asarray(p[0].example.bbox) for f, p in task.frames.items()}
    # a detection overlapping frame 0's person well, and one far away
    x, y, w, h = gt[0]
    detections = [[x + 4, y - 3, w - 6, h + 2, 0.9], [250, 10, 40, 80, 0.8]]
    monkeypatch.setitem(video_stage._DETECTORS, 'list', _ListDetector(detections))
    run_video_stage([task], videos / 'hung', data_root=videos, n_workers=1, detector_spec='list',
                    box_rule=BoxRule('hungarian', min_iou=0.5))
    report = video_stage.video_stage_report(videos / 'hung')
    assert report['stats'] == {'people': 2, 'matched_to_detection': 1, 'dropped_no_detection': 0,
                               'outside_image': 0}
    run_video_stage([task], videos / 'drop', data_root=videos, n_workers=1, detector_spec='list',
                    box_rule=BoxRule('best_iou', min_iou=0.5, fallback_to_gt=False))
    assert [k for k, _ in load_crop_results(videos / 'drop')] == ['a/000000']
    result = video_stage._load_result(video_stage.result_path(videos / 'drop', 'a'))
    np.testing.assert_allclose(result['detections'][0], detections)


def _joints_inside(box, pixels):
    return int(np.sum((pixels[:, 0] >= box[0]) & (pixels[:, 0] < box[0] + box[2]) & (pixels[:, 1] >= box[1]) &
                      (pixels[:, 1] < box[1] + box[3])))


def _iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_hungarian_with_joints_inside_the_detection(videos, monkeypatch):
    """min_joints_inside: the Hungarian match (IoU >= 0.2) must also hold that many of the person's projected joints,
    else the person is dropped. One fixed detection (the upper 55 % of frame 0's GT box) for frames 0, 6, 12, 18:
    the person drifts right, so the frames differ in IoU and joints inside; the outcome is restated here."""
    frames = [0, 2, 6, 12, 18]
    task = _task('a', videos / 'a.mp4', frames)
    x, y, w, h = np.asarray(task.frames[0][0].example.bbox, np.float64)
    detection = np.array([x, y, w, 0.55 * h], np.float32)
    monkeypatch.setitem(video_stage._DETECTORS, 'one', _ListDetector([[*detection, 0.9]]))
    expected = {}
    for min_inside in (None, 4):
        kept = set()
        for f in frames:
            inside = _joints_inside(detection, CAMERA.world_to_image(_joints(f)))
            if _iou(task.frames[f][0].example.bbox, detection) >= 0.2 and (min_inside is None or inside >= min_inside):
                kept.add(f'a/{f:06d}')
        expected[min_inside] = kept
    assert expected[4] and expected[4] < expected[None]  # the joint condition changes the outcome
    for min_inside in (None, 4):
        out = videos / f'min_inside_{min_inside}'
        run_video_stage([task], out, data_root=videos, n_workers=1, detector_spec='one',
                        box_rule=BoxRule('hungarian', min_iou=0.2, fallback_to_gt=False, min_joints_inside=min_inside))
        assert {k for k, _ in load_crop_results(out)} == expected[min_inside]
    # explicit joints2d replace the projected world joints: all NaN = none inside, so nobody is kept
    for people in task.frames.values():
        people[0].joints2d = np.full((6, 2), np.nan)
    run_video_stage([task], videos / 'nan_joints', data_root=videos, n_workers=1, detector_spec='one',
                    box_rule=BoxRule('hungarian', min_iou=0.2, fallback_to_gt=False, min_joints_inside=1))
    assert load_crop_results(videos / 'nan_joints') == []


def test_box_rule_options():
    with pytest.raises(ValueError, match='hungarian'):
        BoxRule('best_iou', min_joints_inside=6)
    assert 'min_joints_inside' not in BoxRule('hungarian').as_options()  # earlier results keep their fingerprint
    assert BoxRule(**BoxRule('hungarian', min_joints_inside=6).as_options()).min_joints_inside == 6


def test_choose_boxes_rules():
    people = [PersonTask('p0', Pose3DExample('x', np.zeros((1, 3)), [10, 10, 50, 100], CAMERA), 'c0'),
              PersonTask('p1', Pose3DExample('x', np.zeros((1, 3)), [100, 10, 50, 100], CAMERA), 'c1')]
    detections = np.array([[102, 12, 50, 100, 0.9], [12, 8, 48, 100, 0.7]], np.float32)
    hungarian = video_stage.choose_boxes(people, detections, BoxRule('hungarian', min_iou=0.5))
    np.testing.assert_allclose(hungarian[0], detections[1, :4])
    np.testing.assert_allclose(hungarian[1], detections[0, :4])
    assert video_stage.choose_boxes(people, detections[:1], BoxRule('hungarian', 0.5, fallback_to_gt=False))[0] \
        is None
    np.testing.assert_allclose(video_stage.choose_boxes(people, detections, BoxRule('gt'))[0], [10, 10, 50, 100])


def test_a_changed_video_renders_its_crops_again(videos):
    task = _task('a', videos / 'a.mp4', [0, 10])
    run_video_stage([task], videos / 'work', data_root=videos, n_workers=1)
    crop = videos / 'crops' / 'a' / '000010.jpg'
    before = improc.imread_rgb(crop).astype(float).mean()
    # a fixed release: same frames, brighter background; the crops must follow, not be kept from before
    frames = []
    from posepile.util.video import iter_frames
    for _, frame in iter_frames(videos / 'a.mp4'):
        frames.append(np.clip(frame.astype(int) + 60, 0, 255).astype(np.uint8))
    write_video(videos / 'a.mp4', frames, fps=25, quality=10)
    run_video_stage([task], videos / 'work', data_root=videos, n_workers=1)
    assert improc.imread_rgb(crop).astype(float).mean() > before + 40
