"""posepile/ds/egoexo4d/main.sh end to end on a fake Ego-Exo4D release (train, val and test takes; 2 GoPros with KB3
fisheye lenses and an Aria with Fisheye624 per take; 61-point body + hands; a two-person frame; a GoPro stationary
window), plus the readers on the real (format-only) Aria calibration."""
import json

import numpy as np
import pytest

from posepile.paths import realdata_root
from tests import faults
from tests.fakes import egoexo4d as fake
from tests.markers import dot_errors

N_FRAMES = 10


def kept_indices(poses_mm, threshold_mm=100):
    """The sampler for a buffer longer than the track: keep the first frame; then a frame with a joint that was
    missing in the last kept one, or one that moved >= threshold in some joint valid in both away from EVERY frame
    kept so far. A kept pose is remembered with its missing joints filled from the last remembered one."""
    kept, indices = [poses_mm[0]], [0]
    for i, pose in enumerate(poses_mm[1:], 1):
        if np.any(~np.isnan(pose[:, 0]) & np.isnan(kept[-1][:, 0])) or \
                min(np.nanmax(np.linalg.norm(pose - old, axis=-1)) for old in kept) >= threshold_mm:
            kept.append(np.where(np.isnan(pose), kept[-1], pose))
            indices.append(i)
    return indices


def n_kept(poses_mm, threshold_mm=100):
    return len(kept_indices(poses_mm, threshold_mm))


def truth_joints_mm(take, frame):
    """(61, 3) mm: 17 body, neck and pelvis as the shoulder and hip midpoints, 42 hand joints."""
    body = take['body'][frame] * 1000
    return np.concatenate([body, [(body[5] + body[6]) / 2, (body[11] + body[12]) / 2], take['hands'][frame] * 1000])


def view_truth(take, camera, frame):
    """(R, centre m, pixels (61, 2), (H, W)) of a camera at a frame, projected by the fake's own lens code."""
    joints_m = truth_joints_mm(take, frame) / 1000
    if camera == 'aria01':
        R, centre = take['aria'][frame]
        return R, centre, fake.aria_project((joints_m - centre) @ R.T, fake.aria_params_at(fake.ARIA_VIDEO)), \
            (fake.ARIA_VIDEO, fake.ARIA_VIDEO)
    R, centre, _ = take['exo'][camera]
    return R, centre, fake.exo_project((joints_m - centre) @ R.T), (fake.EXO_H, fake.EXO_W)


def expected_views(truth, with_kept_frames=False):
    """{(take, camera): (n kept, {frame: valid mask})} by the rules restated: train and val takes only, frames with
    one person, the GoPro's stationary window; a joint is valid when annotated, in front and on the frame; >= 6
    valid joints; the sampler on the camera-frame joints. with_kept_frames: (kept frames, {frame: valid mask})."""
    result = {}
    for take_name, take in truth.items():
        if take['split'] == 'test':
            continue
        for camera in ('cam01', 'cam02', 'aria01'):
            poses, masks = [], {}
            for frame in range(N_FRAMES):
                if frame in take['multi']:
                    continue
                if camera != 'aria01':
                    start, end = take['exo'][camera][2]
                    if start >= 0 and not start <= frame <= end:
                        continue
                R, centre, pixels, (height, width) = view_truth(take, camera, frame)
                with np.errstate(invalid='ignore'):
                    valid = np.all(np.isfinite(pixels), axis=1) & (pixels[:, 0] >= -0.5) & \
                        (pixels[:, 0] <= width - 0.5) & (pixels[:, 1] >= -0.5) & (pixels[:, 1] <= height - 0.5)
                if valid.sum() >= 6:
                    cam = (truth_joints_mm(take, frame) - centre * 1000) @ R.T
                    if camera == 'aria01':
                        cam[~valid] = np.nan
                    poses.append(cam)
                    masks[frame] = valid
            if poses:
                kept = [list(masks)[i] for i in kept_indices(poses)]
                result[(take_name, camera)] = (kept if with_kept_frames else len(kept), masks)
    return result


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('egoexo4d_data')
    truth = fake.write_fake_release(data_root / 'egoexo4d', n_frames=N_FRAMES)
    result = faults.run_recipe('egoexo4d', data_root, env_extra={'POSEPILE_WORKERS': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return data_root, truth, load_dataset(data_root / 'cache' / 'egoexo4d.posepile')


def _parts(example):
    """(take, camera, frame) of a crop path egoexo4d_downscaled/<take>/<camera>/<frame>.jpg."""
    _, take, camera, stem = example.image_path.split('/')
    return take, camera, int(stem.split('.')[0])


def test_counts_splits_nan_rule_and_units(built):
    data_root, truth, dataset = built
    expected = expected_views(truth)
    counts = {}
    for split, examples in enumerate([dataset.examples[0], dataset.examples[1]]):
        for example in examples:
            take, camera, frame = _parts(example)
            assert truth[take]['split'] == ('train', 'val')[split]
            counts[(take, camera)] = counts.get((take, camera), 0) + 1
    assert counts == {key: n for key, (n, _) in expected.items()}
    assert not dataset.examples[2]
    assert len(dataset.joint_info.names) == 61 and dataset.joint_info.names[17:20] == ['neck', 'pelv', 'lhand']
    n_ego = sum(n for (_, camera), (n, _) in expected.items() if camera == 'aria01')
    assert 6 < n_ego < sum(counts.values()) - 6
    n_nan = 0
    for example in list(dataset.examples[0]) + list(dataset.examples[1]):
        take, camera, frame = _parts(example)
        assert frame not in fake.MULTI_PERSON_FRAMES
        joints = truth_joints_mm(truth[take], frame)
        nan = np.isnan(example.world_coords[:, 0])
        if camera == 'aria01':
            assert np.array_equal(~nan, expected[(take, camera)][1][frame])  # exactly the joints out of the view
            n_nan += nan.sum()
        else:
            assert np.array_equal(nan, np.isnan(joints[:, 0]))  # only the unannotated ones
        np.testing.assert_allclose(example.world_coords[~nan], joints[~nan], atol=0.01)
        R, centre = (truth[take]['aria'][frame] if camera == 'aria01' else truth[take]['exo'][camera][:2])
        np.testing.assert_allclose(example.camera.t, centre * 1000, atol=0.01)
        assert example.camera.distortion_coeffs is None  # a pinhole crop
    assert n_nan > 0


def test_dots_sit_at_the_projected_joints(built):
    """The crops show the dots rendered at the fisheye-projected body and hand joints (no overlay drawn)."""
    data_root, truth, dataset = built
    errors = {'exo': [], 'ego': []}
    for example in list(dataset.examples[0]) + list(dataset.examples[1]):
        take, camera, frame = _parts(example)
        rendered = np.concatenate([truth[take]['body'][frame], truth[take]['hands'][frame]]) * 1000
        rendered = rendered[np.all(np.isfinite(rendered), axis=1)]
        in_front = example.camera.world_to_camera(rendered)[:, 2] > 0
        projected = example.camera.world_to_image(rendered[in_front])
        focal = fake.EXO_PARAMS[0] if camera != 'aria01' else fake.aria_params_at(fake.ARIA_VIDEO)[0]
        radius = max(3, int(round(3 * example.camera.intrinsic_matrix[0, 0] / focal)))
        errors['ego' if camera == 'aria01' else 'exo'] += dot_errors(data_root / example.image_path, projected,
                                                                      radius, separation=3)
    for kind, values in errors.items():
        assert len(values) > 10, (kind, len(values))
        assert np.median(values) < 0.5 and np.max(values) < 1.5, (kind, np.median(values), np.max(values))


def test_ego_crops_stay_in_front_of_the_aria_and_on_the_frame(built):
    from posepile.ds.egoexo4d.main import aria_rgb_params_at_width, ego_camera
    from posepile.util import improc
    data_root, truth, dataset = built
    n = 0
    for example in list(dataset.examples[0]) + list(dataset.examples[1]):
        take, camera, frame = _parts(example)
        if camera != 'aria01':
            continue
        R, centre = truth[take]['aria'][frame]
        source = ego_camera(aria_rgb_params_at_width(fake.ARIA_PARAMS_2880, fake.ARIA_VIDEO),
                            np.concatenate([R, (-R @ centre)[:, None]], 1))
        crop_h, crop_w = improc.imread_rgb(data_root / example.image_path).shape[:2]
        border = np.concatenate(
            [np.stack([np.linspace(0, crop_w - 1, 20), np.full(20, y)], 1) for y in (0, crop_h - 1)] +
            [np.stack([np.full(20, x), np.linspace(0, crop_h - 1, 20)], 1) for x in (0, crop_w - 1)])
        rays = example.camera.image_to_rays(border) @ example.camera.R @ R.T
        assert np.all(rays[:, 2] >= -1e-9)
        pixels = fake.aria_project(np.where(rays[:, 2:] > 1e-9, rays, [0, 0, 1]), fake.aria_params_at(fake.ARIA_VIDEO))
        assert np.all((pixels >= -0.6) & (pixels <= fake.ARIA_VIDEO - 0.4)), (pixels.min(), pixels.max())
        # the recipe's Aria camera is the fake's Fisheye624 lens (re-stated formula) within 1e-6 px
        front = rays[:, 2] > 1e-3
        assert np.abs(source.camera_to_image(rays[front]) - pixels[front]).max() < 1e-6
        n += 1
    assert n > 5


def _iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


class _FrameLookupDetector:
    """A deterministic detector: the detections of a decoded frame looked up by its pixels' hash."""

    def __init__(self, by_hash):
        self.by_hash = by_hash

    def detect(self, image):
        import hashlib
        return self.by_hash.get(hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest(),
                                np.zeros((0, 5), np.float32))


def test_detections_need_iou_and_six_valid_joints_inside(tmp_path, monkeypatch):
    """With a detector: a person is kept iff the detection matched at IoU >= 0.2 holds >= 6 of its valid projected
    joints (the original's rule), restated here. The detector (looked up by frame pixels) gives per selected frame
    either the GT box (projected valid joints x1.05; kept) or the GT box shifted down or up by 0.6 of its height
    (IoU 0.25: kept only when >= 6 valid joints fall in the shifted box). Run once without the joint condition (every
    person kept) and once with it."""
    import hashlib

    from posepile.ds.egoexo4d import main as egoexo4d
    from posepile.preproc import pipeline, video_stage
    from posepile.preproc.video_stage import BoxRule
    from posepile.util.video import iter_frames
    truth = fake.write_fake_release(tmp_path / 'egoexo4d', n_frames=N_FRAMES)
    selected = expected_views(truth, with_kept_frames=True)
    by_hash, expected_with_rule, n_selected = {}, set(), 0
    for (take_name, camera), (kept, masks) in selected.items():
        name = 'aria01_214-1' if camera == 'aria01' else camera
        frames = dict(iter_frames(tmp_path / 'egoexo4d' / 'takes' / take_name / 'frame_aligned_videos' / f'{name}.mp4',
                                  kept))
        for frame in kept:
            n_selected += 1
            pixels = view_truth(truth[take_name], camera, frame)[2][masks[frame]]
            (x0, y0), (x1, y1) = pixels.min(0), pixels.max(0)
            w, h = (x1 - x0) * 1.05, (y1 - y0) * 1.05
            gt = np.array([(x0 + x1 - w) / 2, (y0 + y1 - h) / 2, w, h])
            shift = (0, 0.6, -0.6)[frame % 3] * h
            det = np.array([[gt[0], gt[1] + shift, gt[2], gt[3], 0.9]], np.float32)
            by_hash[hashlib.sha1(np.ascontiguousarray(frames[frame]).tobytes()).hexdigest()] = det
            box = det[0, :4].astype(np.float64)
            inside = (pixels[:, 0] >= box[0]) & (pixels[:, 0] < box[0] + box[2]) & (pixels[:, 1] >= box[1]) & \
                (pixels[:, 1] < box[1] + box[3])
            if _iou(gt, box) >= 0.2 and inside.sum() >= 6:
                expected_with_rule.add((take_name, camera, frame))
    monkeypatch.setitem(video_stage._DETECTORS, 'lookup', _FrameLookupDetector(by_hash))

    def crops():
        result = {}
        for subdir in egoexo4d.SUBDIRS.values():
            for key, example in pipeline.recipe_crop_results('egoexo4d', tmp_path, subdir):
                _, _, take_name, camera, frame = key.split('/')
                result[(take_name, camera, int(frame))] = example
        return result

    with monkeypatch.context() as m:
        m.setattr(egoexo4d, 'box_rule', lambda spec: BoxRule('hungarian', min_iou=0.2, fallback_to_gt=False))
        egoexo4d.video_stage(detector_spec='lookup', n_workers=1, data_root=tmp_path)
    without_rule = crops()
    egoexo4d.video_stage(detector_spec='lookup', n_workers=1, data_root=tmp_path)
    with_rule = crops()
    assert len(without_rule) == n_selected  # every shifted box still overlaps at IoU 0.25
    assert set(with_rule) == expected_with_rule
    assert 0 < len(with_rule) < n_selected - 3, (len(with_rule), n_selected)


def test_bad_gopro_calibration_is_one_line(tmp_path):
    fake.write_fake_release(tmp_path / 'egoexo4d', n_frames=2)
    path = tmp_path / 'egoexo4d' / 'takes' / fake.TAKES['val'] / 'trajectory' / 'gopro_calibs.csv'
    path.write_text(path.read_text().replace('KANNALABRANDTK3', 'FISHEYE624', 1))
    result = faults.run_recipe('egoexo4d', tmp_path)
    faults.assert_one_line_failure(result, str(path), 'KANNALABRANDTK3')


@pytest.mark.realdata
def test_real_aria_online_calibration_reads_and_scales():
    from posepile.ds.egoexo4d.main import aria_rgb_params_at_width, ego_camera, load_aria_rgb_params
    root = realdata_root()
    path = root / 'ego_exo4d/_format_only_aria_mps/trajectory/online_calibration.jsonl' if root else None
    if path is None or not path.exists():
        pytest.skip('real Aria MPS calibration not available (realdata/ego_exo4d)')
    params = load_aria_rgb_params(path)
    with open(path) as f:
        rgb = next(c for c in json.loads(f.readline())['CameraCalibrations'] if c['Label'] == 'camera-rgb')
    np.testing.assert_array_equal(params, rgb['Projection']['Params'])
    scaled = aria_rgb_params_at_width(params, 1408)
    np.testing.assert_allclose(scaled[:3], np.array(rgb['Projection']['Params'][:3]) * 1408 / 2880)
    camera = ego_camera(scaled, np.concatenate([np.eye(3), np.zeros((3, 1))], 1))
    assert camera.distortion_model == 'fisheye624'
    assert np.allclose(camera.world_to_image([[0, 0, 1000.0]]), scaled[1:3])
