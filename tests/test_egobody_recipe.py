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


def test_truncated_fit_is_one_line(tmp_path):
    fake.write_fake_release(tmp_path)
    rec = next(iter(fake.RECORDINGS))
    path = (tmp_path / 'egobody' / 'smplx_interactee_train' / rec / f'body_idx_{fake.RECORDINGS[rec]["interactee"]}'
            / 'results' / 'frame_00002' / '000.pkl')
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    result = faults.run_recipe('egobody', tmp_path)
    faults.assert_one_line_failure(result, str(path))
