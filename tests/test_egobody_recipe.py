"""posepile/ds/egobody/main.sh end to end on a fake EgoBody release (Kinect calibration chain to the scene frame, both
people's SMPL-X from the master Kinect frame, HoloLens PV frames with per-frame poses, split CSV, images in zips)."""
import numpy as np
import pytest

from tests import faults
from tests.fakes import egobody as fake
from tests.fakes.genebody import forward_kinematics
from tests.markers import dot_errors
from tests.test_freeman_recipe import n_kept
from tests.toy_bodymodels import PARENTS

SPLITS = {'train': 0, 'val': 1, 'test': 2}


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('egobody_data')
    written = fake.write_fake_release(data_root)
    result = faults.run_recipe('egobody', data_root, env_extra={'POSEPILE_WORKERS': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return data_root, written, load_dataset(data_root / 'cache' / 'egobody.posepile')


def expected_examples(written):
    """The rules re-stated: frames START..END; per recording, person and view the frames with all joints in front
    and >= 6 projected into the image, then the sampler (100 mm; the buffer outlasts the track) on camera joints."""
    expected = {}
    for rec, spec in fake.RECORDINGS.items():
        for body in (0, 1):
            track = [p for p in written['people'] if p['rec'] == rec and p['body'] == body
                     and fake.START <= p['frame'] <= fake.END]
            for view in spec['views'] + ('pv',):
                candidates = []
                for p in track:
                    T, K, dist, (width, height) = written['cameras'][(rec, view, p['frame'])]
                    cam = p['joints_world_m'] @ T[:3, :3].T + T[:3, 3]
                    if not np.all(cam[:, 2] > 0):
                        continue
                    pixels = fake.project(p['joints_world_m'], T, K, dist)
                    inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & \
                        (pixels[:, 1] < height)
                    if inside.sum() >= 6:
                        candidates.append(cam * 1000)
                if candidates:
                    expected[(rec, view, body)] = n_kept(np.stack(candidates))
    return expected


def test_counts_splits_and_views(built):
    _, written, dataset = built
    expected = expected_examples(written)
    got = {}
    for split, examples in dataset.examples.items():
        for example in examples:
            parts = example.image_path.split('/')
            rec, view, name = parts[1], parts[2], parts[3]
            body = int(name.split('_')[1].split('.')[0])
            got[(rec, view, body)] = got.get((rec, view, body), 0) + 1
            assert SPLITS[fake.RECORDINGS[rec]['split']] == split
    assert got == expected
    # both people in the Kinect views; only the interactee in the PV frames (the wearer is behind the HoloLens)
    train = next(r for r, s in fake.RECORDINGS.items() if s['split'] == 'train')
    assert {(train, 'master', 0), (train, 'master', 1), (train, 'sub_1', 0), (train, 'sub_1', 1)} <= set(got)
    assert {(r, b) for r, v, b in got if v == 'pv'} == {(r, s['interactee']) for r, s in fake.RECORDINGS.items()}
    assert len(dataset.examples[0]) > 10 and len(dataset.examples[1]) > 3 and not dataset.examples[2]
    assert not dataset.joint_info.names


def test_world_parameters_round_trip_to_the_dots(built):
    """World parameters -> example camera (rototranslate) -> toy forward kinematics here -> the crop camera's
    pixels: the dots drawn in the Kinect (distorted) and PV frames sit there within 0.5 px; the world joints equal
    the master-frame fit moved by kinect12_to_world (each person with their own gendered model)."""
    import cv2

    from posepile import bodymodels
    data_root, written, dataset = built
    truth = {(p['rec'], p['frame'], p['body']): p for p in written['people']}
    errors, world_errors = {'kinect': [], 'pv': []}, []
    for example in [ex for examples in dataset.examples.values() for ex in examples]:
        parts = example.image_path.split('/')
        rec, view, name = parts[1], parts[2], parts[3]
        frame, body = (int(v) for v in name.split('.')[0].split('_'))
        person = truth[(rec, frame, body)]
        params = example.parameters
        assert params['type'] == 'smplx' and params['gender'] == person['gender'] and example.world_coords is None
        arrays = written['models'][person['gender']]
        world = forward_kinematics(arrays, PARENTS['smplx'], np.float64(params['pose']), np.float64(params['shape']),
                                   np.float64(params['trans']), expression=np.float64(params['expression']))
        world_errors.append(np.abs(world - person['joints_world_m']).max() * 1000)
        camera = example.camera
        model = bodymodels.load('smplx', person['gender'], data_root / 'body_models')
        in_camera = bodymodels.rototranslate(params, camera.R, camera.t / 1000, model=model)
        joints = forward_kinematics(arrays, PARENTS['smplx'], np.float64(in_camera['pose']),
                                    np.float64(in_camera['shape']), np.float64(in_camera['trans']),
                                    expression=np.float64(in_camera['expression']))[:fake.N_DOTS]
        dist = np.zeros(5) if camera.distortion_coeffs is None else camera.distortion_coeffs
        pixels = cv2.projectPoints(joints, np.zeros(3), np.zeros(3), camera.intrinsic_matrix, dist)[0][:, 0]
        radius = max(3, int(round(3 * camera.intrinsic_matrix[0, 0] / fake.KINECT_FOCAL)))
        errors['pv' if view == 'pv' else 'kinect'] += dot_errors(data_root / example.image_path, pixels, radius)
    assert max(world_errors) < 0.05, max(world_errors)
    for kind, values in errors.items():
        assert len(values) > 20, (kind, len(values))
        assert np.median(values) < 0.5 and np.max(values) < 1.5, (kind, np.median(values), np.max(values))


def _kept_frames(frames, poses_mm, threshold_mm=100):
    """The sampler for complete poses and a buffer longer than the track (as n_kept), returning the kept frames."""
    kept = [0]
    for i in range(1, len(poses_mm)):
        if min(np.max(np.linalg.norm(poses_mm[i] - poses_mm[k], axis=-1)) for k in kept) >= threshold_mm:
            kept.append(i)
    return [frames[i] for i in kept]


def _iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _inside(box, pixels):
    return int(np.sum((pixels[:, 0] >= box[0]) & (pixels[:, 0] < box[0] + box[2]) & (pixels[:, 1] >= box[1]) &
                      (pixels[:, 1] < box[1] + box[3])))


def detections_and_expected(data_root, written):
    """A deterministic detector's file (as the detect stage writes it, keyed by the zip member paths) and the
    outcome by the rule restated: per image, every person in view gets a detection: by person and frame either
    their projected joints' box x1.05 (the GT box) or its 0.46 x 0.46 corner holding the fewest joints (IoU 0.21
    with the GT box), plus a far false positive; the image's selected people are Hungarian-matched on IoU >= 0.2
    (maximum summed IoU) and a match is kept iff >= 6 of the person's projected joints lie in the detection.
    Returns (detections, {(rec, view, frame, body): box} with the joint condition, the same without it)."""
    import zipfile

    from scipy.optimize import linear_sum_assignment
    members = {}
    for name in ('kinect_color', 'egocentric_color'):
        for member in zipfile.ZipFile(data_root / 'egobody' / f'{name}.zip').namelist():
            parts = member.split('/')
            if member.endswith('.jpg'):
                view = 'pv' if parts[-2] == 'PV' else parts[-2]
                members[(parts[1], view, int(member[-9:-4]))] = f'egobody/{name}.zip::{member}'
    people, tracks = {}, {}  # (rec, view, frame) -> {body: (gt box, pixels)}; (rec, view, body) -> [(frame, cam)]
    for p in written['people']:
        if not fake.START <= p['frame'] <= fake.END:
            continue
        for view in fake.RECORDINGS[p['rec']]['views'] + ('pv',):
            T, K, dist, (width, height) = written['cameras'][(p['rec'], view, p['frame'])]
            cam = p['joints_world_m'] @ T[:3, :3].T + T[:3, 3]
            pixels = fake.project(p['joints_world_m'], T, K, dist)
            if not np.all(cam[:, 2] > 0) or _inside([0, 0, width, height], pixels) < 6:
                continue
            (x0, y0), (x1, y1) = pixels.min(0), pixels.max(0)
            w, h = (x1 - x0) * 1.05, (y1 - y0) * 1.05
            gt = np.array([(x0 + x1 - w) / 2, (y0 + y1 - h) / 2, w, h])
            people.setdefault((p['rec'], view, p['frame']), {})[p['body']] = (gt, pixels)
            tracks.setdefault((p['rec'], view, p['body']), []).append((p['frame'], cam * 1000))
    selected = {(rec, view, frame, body) for (rec, view, body), track in tracks.items()
                for frame in _kept_frames([f for f, _ in track], [c for _, c in track])}
    detections, expected = {}, {True: {}, False: {}}
    for (rec, view, frame), in_view in people.items():
        dets = [[2000, 2000, 50, 80, 0.5]]
        for body, (gt, pixels) in sorted(in_view.items()):
            if (frame + body) % 2:
                dets.append([*gt, 0.9])
                continue
            corners = [np.array([gt[0] + cx * 0.54 * gt[2], gt[1] + cy * 0.54 * gt[3], 0.46 * gt[2], 0.46 * gt[3]])
                       for cx in (0, 1) for cy in (0, 1)]
            dets.append([*min(corners, key=lambda box: _inside(box, pixels)), 0.9])
        dets = np.array(dets, np.float32)
        detections[members[(rec, view, frame)]] = dets
        bodies = [b for b in sorted(in_view) if (rec, view, frame, b) in selected]
        ious = np.array([[_iou(in_view[b][0], d) for d in dets[:, :4].astype(np.float64)] for b in bodies])
        rows, cols = linear_sum_assignment(-np.where(ious >= 0.2, ious, 0).reshape(len(bodies), -1))
        for row, col in zip(rows, cols):
            if ious[row, col] >= 0.2:
                box = dets[col, :4]
                expected[False][(rec, view, frame, bodies[row])] = box
                if _inside(box.astype(np.float64), in_view[bodies[row]][1]) >= 6:
                    expected[True][(rec, view, frame, bodies[row])] = box
    return detections, expected[True], expected[False]


def test_detections_need_iou_and_six_projected_joints_inside(tmp_path, monkeypatch):
    """With a detection file the crops are exactly the selected people whose Hungarian match (IoU >= 0.2) holds
    >= 6 projected joints, with the detection as the full-frame box; the joint condition drops some people."""
    from posepile.ds.egobody import main as egobody
    from posepile.preproc.video_stage import BoxRule
    from posepile.storage.annotations import load_dataset
    from posepile.util import fileio
    written = fake.write_fake_release(tmp_path)
    detections, expected, expected_without = detections_and_expected(tmp_path, written)
    assert 0 < len(expected) < len(expected_without) - 3  # the joint condition matters here
    fileio.save_pickle(detections, egobody.detections_path(tmp_path))
    result = faults.run_recipe('egobody', tmp_path, env_extra={'POSEPILE_WORKERS': '1', 'POSEPILE_DETECTOR': ''})
    assert result.returncode == 0, result.stderr[-3000:]
    dataset = load_dataset(tmp_path / 'cache' / 'egobody.posepile')
    got = set()
    for example in [ex for examples in dataset.examples.values() for ex in examples]:
        _, rec, view, name = example.image_path.split('/')
        frame, body = (int(v) for v in name.split('.')[0].split('_'))
        got.add((rec, view, frame, body))
    assert got == set(expected)
    # the full-frame box of each crop task is the matched detection
    tasks = egobody.make_crop_tasks(tmp_path, detections)
    boxes = {tuple(k.split('/')[1:3]) + (int(k.split('/')[3]), int(k.split('/')[4])): ex.bbox for k, ex, _ in tasks}
    assert set(boxes) == set(expected)
    for key, box in boxes.items():
        np.testing.assert_array_equal(box, expected[key])
    # without the joint condition, every IoU match is kept
    monkeypatch.setattr(egobody, 'detection_rule', lambda: BoxRule('hungarian', min_iou=0.2, fallback_to_gt=False))
    assert {tuple(k.split('/')[1:3]) + (int(k.split('/')[3]), int(k.split('/')[4]))
            for k, _, _ in egobody.make_crop_tasks(tmp_path, detections)} == set(expected_without)


def test_truncated_fit_is_one_line(tmp_path):
    fake.write_fake_release(tmp_path)
    rec = next(iter(fake.RECORDINGS))
    path = (tmp_path / 'egobody' / 'smplx_interactee_train' / rec / f'body_idx_{fake.RECORDINGS[rec]["interactee"]}'
            / 'results' / 'frame_00002' / '000.pkl')
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    result = faults.run_recipe('egobody', tmp_path)
    faults.assert_one_line_failure(result, str(path))
