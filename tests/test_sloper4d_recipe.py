"""posepile/ds/sloper4d/main.sh end to end on a fake SLOPER4D release (labels pickle + MP4 per sequence, frames
picked by time stamp, distorted head-mounted camera moving per frame, world z up)."""
import cv2
import numpy as np
import pytest

from tests import faults
from tests.fakes import sloper4d as fake
from tests.fakes.genebody import forward_kinematics
from tests.markers import dot_errors
from tests.test_freeman_recipe import n_kept
from tests.toy_bodymodels import PARENTS


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('sloper4d_data')
    written = fake.write_fake_release(data_root)
    result = faults.run_recipe('sloper4d', data_root, env_extra={'POSEPILE_WORKERS': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return data_root, written, load_dataset(data_root / 'cache' / 'sloper4d.posepile')


def expected_frames(written):
    """The rules re-stated: labelled rows whose joints are all in front of the camera and >= 6 of them project
    into the bbox (OpenCV with the distortion), then the sampler (100 mm) on the camera-frame joints."""
    kept = []
    for seq in fake.SEQUENCES:
        candidates = []
        for row in (r for r in written['rows'] if r['seq'] == seq and r['labelled']):
            R, t = row['cam_pose'][:3, :3], row['cam_pose'][:3, 3]
            cam = row['joints_world_m'] @ R.T + t
            pixels = cv2.projectPoints(row['joints_world_m'], cv2.Rodrigues(R)[0], t, row['K'],
                                       fake.DISTORTION)[0][:, 0]
            x1, y1, x2, y2 = row['bbox_xyxy']
            inside = (pixels[:, 0] >= x1) & (pixels[:, 0] < x2) & (pixels[:, 1] >= y1) & (pixels[:, 1] < y2)
            if np.all(cam[:, 2] > 0) and inside.sum() >= 6:
                candidates.append((row['frame'], cam * 1000))
        assert len(candidates) == len(fake.LABELLED_FRAMES) - 2  # the unlabelled row and the box beside the body
        n = n_kept(np.stack([c for _, c in candidates]))
        poses = [c for _, c in candidates]
        selected = [0]
        for i in range(1, len(poses)):
            if min(np.max(np.linalg.norm(poses[i] - poses[k], axis=-1)) for k in selected) >= 100:
                selected.append(i)
        assert len(selected) == n
        kept += [(seq, candidates[i][0]) for i in selected]
    return kept


def test_counts_and_frames(built):
    data_root, written, dataset = built
    expected = expected_frames(written)
    assert 6 <= len(expected) < 2 * (len(fake.LABELLED_FRAMES) - 2)  # the sampler drops some, not all
    got = sorted((ex.scene_name, int(ex.image_path.rsplit('/', 1)[1].split('.')[0])) for ex in dataset.examples[0])
    assert got == sorted(expected)
    assert not dataset.examples[1] and not dataset.examples[2] and not dataset.joint_info.names
    rows = {(r['seq'], r['frame']): r for r in written['rows']}
    for example in dataset.examples[0]:
        row = rows[(example.scene_name, int(example.image_path.rsplit('/', 1)[1].split('.')[0]))]
        p = example.parameters
        assert example.world_coords is None and p['type'] == 'smpl' and p['gender'] == row['gender']
        np.testing.assert_allclose(p['trans'], row['params']['trans'], atol=1e-6)  # world frame, as released
        # the crop camera keeps the optical centre (mm) and world up z
        R, t = row['cam_pose'][:3, :3], row['cam_pose'][:3, 3]
        np.testing.assert_allclose(example.camera.t, -R.T @ t * 1000, atol=1e-3)
        np.testing.assert_allclose(example.camera.world_up, (0, 0, 1), atol=1e-9)


def test_world_parameters_round_trip_to_the_dots(built):
    """World parameters -> example camera (rototranslate) -> forward kinematics here -> the crop camera's pixels:
    the dots drawn through the released distortion in the video frames sit there within 0.5 px."""
    from posepile import bodymodels
    data_root, written, dataset = built
    errors = []
    for example in dataset.examples[0]:
        camera = example.camera
        gender = example.parameters['gender']
        model = bodymodels.load('smpl', gender, data_root / 'body_models')
        in_camera = bodymodels.rototranslate(example.parameters, camera.R, camera.t / 1000, model=model)
        p = {k: np.float64(v) for k, v in in_camera.items() if k in ('pose', 'shape', 'trans')}
        joints = forward_kinematics(written['models'][gender], PARENTS['smpl'], p['pose'], p['shape'], p['trans'])
        dist = np.zeros(5) if camera.distortion_coeffs is None else camera.distortion_coeffs
        pixels = cv2.projectPoints(joints, np.zeros(3), np.zeros(3), camera.intrinsic_matrix, dist)[0][:, 0]
        radius = max(3, int(round(3 * camera.intrinsic_matrix[0, 0] / fake.FOCAL_PX)))
        errors += dot_errors(data_root / example.image_path, pixels, radius)
    assert len(errors) > 2 * len(dataset.examples[0]), len(errors)
    assert np.median(errors) < 0.5 and np.max(errors) < 1.5, (np.median(errors), np.max(errors))


def test_truncated_labels_is_one_line(tmp_path):
    fake.write_fake_release(tmp_path)
    seq = next(iter(fake.SEQUENCES))
    path = tmp_path / 'sloper4d' / seq / f'{seq}_labels.pkl'
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    result = faults.run_recipe('sloper4d', tmp_path)
    faults.assert_one_line_failure(result, str(path))
