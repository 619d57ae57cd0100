"""posepile/ds/egohumans/main.sh end to end on a fake EgoHumans sequence (3 Aria wearers, 2 GoPros, fisheye lenses:
COLMAP OPENCV_FISHEYE k1..k4, Aria frames rotated 90 deg, COLMAP-scaled transforms, a manual exo calibration)."""
import numpy as np
import pytest

from tests import faults
from tests.fakes import egohumans as fake
from tests.markers import dot_errors


def n_kept(poses_mm, threshold_mm=100):
    """The sampler for complete poses and a buffer longer than the track: keep the first frame, then a frame that
    moved >= threshold in some joint away from EVERY frame kept so far."""
    kept = [poses_mm[0]]
    for pose in poses_mm[1:]:
        if min(np.max(np.linalg.norm(pose - old, axis=-1)) for old in kept) >= threshold_mm:
            kept.append(pose)
    return len(kept)


def expected_views(truth):
    """{(camera, person): (n kept, [valid masks of the candidate frames])} by the rules restated: a joint is valid
    in front of the camera, inside the frame and (ego) within 500/1408 of the frame width of the principal point;
    >= 6 valid joints; then the sampler on the camera-frame joints."""
    result = {}
    sensor_cx, sensor_cy = np.array(fake.ARIA_PARAMS[2:4]) - 0.5
    ego_centre = np.array([fake.ARIA_SIZE - 1 - sensor_cy, sensor_cx])  # principal point of the rotated frame
    for kind, cameras in (('ego', truth['ego']), ('exo', truth['exo'])):
        for camera_name, poses in cameras.items():
            for person, joints_m in truth['joints_m'].items():
                candidates, masks = [], []
                for i, (R, centre) in enumerate(poses):
                    if kind == 'ego':
                        pixels = fake.rotate_pixels_clockwise(fake.fisheye_project(
                            joints_m[i], fake.ROT_CW.T @ R, centre, fake.ARIA_PARAMS), fake.ARIA_SIZE)
                        width = height = fake.ARIA_SIZE
                    else:
                        pixels = fake.fisheye_project(joints_m[i], R, centre, fake.EXO_PARAMS)
                        width, height = fake.EXO_W, fake.EXO_H
                    with np.errstate(invalid='ignore'):
                        valid = np.all(np.isfinite(pixels), axis=1) & (pixels[:, 0] >= -0.5) & \
                            (pixels[:, 0] <= width - 0.5) & (pixels[:, 1] >= -0.5) & (pixels[:, 1] <= height - 0.5)
                        if kind == 'ego':
                            valid &= np.linalg.norm(pixels - ego_centre, axis=1) <= fake.EGO_VALID_RADIUS_PX
                    if valid.sum() >= 6:
                        candidates.append((joints_m[i] - centre) @ R.T * 1000)
                        masks.append(valid)
                if candidates:
                    result[(camera_name, person)] = (n_kept(candidates), masks)
    return result


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('egohumans_data')
    truth = fake.write_fake_release(data_root / 'egohumans', n_frames=8)
    result = faults.run_recipe('egohumans', data_root, env_extra={'POSEPILE_WORKERS': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return data_root, truth, load_dataset(data_root / 'cache' / 'egohumans.posepile')


def _camera_and_person(example):
    camera_name, stem = example.image_path.split('/')[3:5]
    return camera_name, stem.split('.')[0].split('_')[1], int(stem.split('_')[0])


def test_counts_nan_rule_and_units(built):
    data_root, truth, dataset = built
    expected = expected_views(truth)
    counts = {}
    for example in dataset.examples[0]:
        camera_name, person, _ = _camera_and_person(example)
        counts[(camera_name, person)] = counts.get((camera_name, person), 0) + 1
    assert counts == {key: n for key, (n, _) in expected.items()}
    n_ego = sum(n for (cam, _), (n, _) in expected.items() if cam.startswith('aria'))
    assert 6 < n_ego < len(dataset.examples[0]) - 6  # both kinds of views, some frames dropped by the sampler
    assert not dataset.examples[1] and not dataset.examples[2]
    assert [e.image_path.split('/')[3].startswith('aria') for e in dataset.examples[0]] == \
        sorted([e.image_path.split('/')[3].startswith('aria') for e in dataset.examples[0]], reverse=True)
    n_nan = 0
    for example in dataset.examples[0]:
        camera_name, person, frame = _camera_and_person(example)
        joints_mm = truth['joints_m'][person][frame - 1] * 1000
        nan = np.isnan(example.world_coords[:, 0])
        if camera_name.startswith('aria'):
            # the NaN joints of an ego example are exactly the invalid ones of some candidate frame's mask
            assert any(np.array_equal(~nan, mask) for mask in expected[(camera_name, person)][1])
            n_nan += nan.sum()
        else:
            assert not nan.any()
        np.testing.assert_allclose(example.world_coords[~nan], joints_mm[~nan], atol=0.01)
        R, centre = (truth['ego'] if camera_name.startswith('aria') else truth['exo'])[camera_name][frame - 1]
        np.testing.assert_allclose(example.camera.t, centre * 1000, atol=0.01)  # scale removed, m -> mm
    assert n_nan > 0  # the ego rule did invalidate joints


def test_dots_sit_at_the_fisheye_projected_joints(built):
    data_root, truth, dataset = built
    errors = {'ari': [], 'cam': []}
    for example in dataset.examples[0]:
        _, _, frame = _camera_and_person(example)
        projected = example.camera.world_to_image(example.world_coords)
        everyone = np.concatenate([j[frame - 1] * 1000 for j in truth['joints_m'].values()])
        in_front = example.camera.world_to_camera(everyone)[:, 2] > 0
        neighbours = example.camera.world_to_image(everyone[in_front])  # other people's dots too
        radius = max(3, int(round(3 * example.camera.intrinsic_matrix[0, 0] / fake.ARIA_PARAMS[0])))
        errors[example.image_path.split('/')[3][:3]] += dot_errors(
            data_root / example.image_path, projected, radius, neighbours=neighbours, separation=3)
    for kind, values in errors.items():
        assert len(values) > 10, (kind, len(values))
        assert np.median(values) < 0.5 and np.max(values) < 1.5, (kind, np.median(values), np.max(values))


def test_crops_stay_inside_the_valid_circle(built):
    """Every pixel of an ego crop comes from within the 500 px (scaled) circle of the Aria frame."""
    from posepile.ds.egohumans.main import Sequence
    from posepile.util import improc
    data_root, truth, dataset = built
    sequence = Sequence(data_root / 'egohumans' / fake.GROUP / fake.SEQUENCE)
    n = 0
    for example in dataset.examples[0]:
        camera_name, _, frame = _camera_and_person(example)
        if not camera_name.startswith('aria'):
            continue
        source = sequence.ego_camera(camera_name, frame)
        height, width = fake.ARIA_SIZE, fake.ARIA_SIZE
        crop_h, crop_w = improc.imread_rgb(data_root / example.image_path).shape[:2]
        border = np.concatenate(
            [np.stack([np.linspace(0, crop_w - 1, 20), np.full(20, y)], 1) for y in (0, crop_h - 1)] +
            [np.stack([np.full(20, x), np.linspace(0, crop_h - 1, 20)], 1) for x in (0, crop_w - 1)])
        rays = example.camera.image_to_rays(border) @ example.camera.R @ source.R.T
        pixels = source.camera_to_image(rays)
        distance = np.linalg.norm(pixels - source.intrinsic_matrix[:2, 2], axis=1)
        assert np.all(distance <= fake.EGO_VALID_RADIUS_PX + 0.5), distance.max()
        assert np.all((pixels >= -0.5) & (pixels <= [width - 0.5, height - 0.5]))
        n += 1
    assert n > 5


def test_detections_need_iou_and_six_joints_inside():
    from posepile.ds.egohumans.main import match_detections
    joints = np.stack([np.linspace(10, 50, 17), np.linspace(20, 100, 17)], axis=1)
    gt = np.array([8, 18, 44, 84.0])
    inside = np.array([[9, 19, 42, 82, 0.9]])
    few = np.array([[9, 19, 42, 20, 0.9]])  # IoU ~0.24 but only 4 joints inside
    assert np.allclose(match_detections([(gt, joints)], inside)[0], inside[0, :4])
    assert match_detections([(gt, joints)], few) == [None]
    assert match_detections([(gt, joints)], np.array([[200, 200, 40, 80, 0.9]])) == [None]  # IoU 0


# (a truncated poses file: tests/test_recipe_contract.py, MAIN_ANNOTATION_FAULTS)


def test_bad_calibration_line_is_one_line(tmp_path):
    fake.write_fake_release(tmp_path / 'egohumans', n_frames=2)
    path = tmp_path / 'egohumans' / fake.GROUP / fake.SEQUENCE / 'ego/aria02/calib/00002.txt'
    lines = path.read_text().splitlines()
    path.write_text('\n'.join(lines[:3] + [' '.join(lines[3].split()[:9])] + lines[4:]) + '\n')
    result = faults.run_recipe('egohumans', tmp_path)
    faults.assert_one_line_failure(result, str(path), 'extrinsics')
