import pickle

import numpy as np
import pytest

from tests.fakes import moyo as fake
from tests.markers import dot_errors
from tests.test_intercap_recipe import run_recipe


def expected_members(release):
    """Per zip, in sorted member order, the frames 50 <= i with 2 (i + 50) < 212 fits, then one sampler (100 mm,
    buffer 200) on the joints in the camera frame relative to the pelvis."""
    from posepile.util.sampling import select_frames
    kept = []
    for phase in fake.SEQUENCES:
        images = sorted((i for i in release['images'] if i['phase'] == phase), key=lambda i: i['member'])
        candidates = [i for i in images if i['frame'] >= 50 and 2 * (i['frame'] + 50) < fake.N_FITS]
        relative = np.stack([(i['joints_m'] - i['centre_m']) @ i['R'].T * 1000 for i in candidates])
        relative -= relative[:, :1]
        kept += [candidates[k] for k in select_frames(relative, 100, buffer_size=200, check_validity=True,
                                                       nan_unchanged=True)]
    return kept


def test_moyo_recipe_on_fake_release(data_root):
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.storage.annotations import load_dataset
    from tests.toy_bodymodels import other_camera, roundtrip_errors_mm
    release = fake.write_fake_release(data_root)
    run_recipe(data_root, 'moyo')
    dataset = load_dataset(data_root / 'cache' / 'moyo.posepile')
    kept = expected_members(release)
    # per sequence and camera: frames 50..55 minus the two 0.5 mm repeats -> 4; 2 sequences x 2 cameras
    assert len(kept) == 16
    for split, phase in ((0, 'train'), (1, 'val')):
        assert sorted(ex.image_path for ex in dataset.examples[split]) == sorted(
            f'moyo_downscaled/{phase}/{i["member"]}' for i in kept if i['phase'] == phase)
    by_member = {i['member']: i for i in release['images']}
    model = bodymodels.load('smplx', 'female', data_root / 'body_models')
    errors, param_errors = [], []
    for example in [*dataset.examples[0], *dataset.examples[1]]:
        image = by_member[example.image_path.split('/', 2)[2]]
        params = example.parameters
        assert params['type'] == 'smplx' and params['gender'] == 'female' and len(params['shape']) == 128
        np.testing.assert_allclose(params['shape'], release['betas'], atol=1e-3)  # from the rest mesh
        np.testing.assert_allclose(params['pose'], image['pose'], atol=1e-6)  # fit 2i of image i
        np.testing.assert_allclose(params['trans'], image['trans'], atol=1e-6)
        world = image['joints_m'] * 1000
        assert np.linalg.norm(parameter_joints_mm(params, model) - world, axis=-1).max() < 0.05
        param_errors += roundtrip_errors_mm(params, world, [example.camera, other_camera(len(param_errors))], model)
        in_camera = bodymodels.rototranslate(params, example.camera.R, example.camera.t / 1000, model=model)
        projected = example.camera.camera_to_image(parameter_joints_mm(in_camera, model))
        drawn = np.all((image['pixels'] >= 13) & (image['pixels'] < [fake.WIDTH - 13, fake.HEIGHT - 13]), axis=1)
        radius = max(3, int(round(2 * example.camera.intrinsic_matrix[0, 0] / fake.FOCAL_PX)))
        errors += dot_errors(data_root / example.image_path, np.where(drawn[:, None], projected, np.nan), radius)
        x, y, w, h = example.bbox  # projected joints x1.05 (no distortion: the crop box is the same rule)
        extent = projected.max(0) - projected.min(0)
        assert 0.85 < w * h / np.prod(1.05 * extent) < 1.15
        assert example.mask is not None
    assert max(param_errors) < 0.1
    assert len(errors) > 16 * 5
    assert np.median(errors) < 0.5 and np.percentile(errors, 95) < 1.0, (np.median(errors), np.max(errors))


def test_frame_mapping_drops_the_t_pose_frames():
    from posepile.ds.moyo.main import fit_index, parse_member
    assert fit_index(49, 1000) is None and fit_index(50, 1000) == 100
    assert fit_index(449, 1000) == 898 and fit_index(450, 1000) is None  # 2 (450 + 50) = 1000 fits
    assert parse_member('220923_yogi_a/YOGI_Cam_07/220923_yogi_a_YOGI_Cam_07_0123.jpg') == (
        '220923_yogi_a', '220923', 'cam_7', 123)
    assert parse_member('220923_yogi_a/notes.txt') is None


def test_ply_reader_and_malformed_files(tmp_path):
    from posepile.bodymodels.fitting import read_ply_vertices
    from posepile.bodymodels.loading import BodyModelFormatError
    from posepile.ds.moyo.main import MOYOFormatError, load_fits
    vertices = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    fake.write_ply(tmp_path / 'm.ply', vertices, [[0, 1, 2], [1, 2, 3]])
    np.testing.assert_allclose(read_ply_vertices(tmp_path / 'm.ply'), vertices, atol=1e-6)
    (tmp_path / 'a.ply').write_text('ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n'
                                    'property float z\nend_header\n1 2 3\n4 5 6\n')
    np.testing.assert_allclose(read_ply_vertices(tmp_path / 'a.ply'), [[1, 2, 3], [4, 5, 6]])
    (tmp_path / 't.ply').write_bytes((tmp_path / 'm.ply').read_bytes()[:-40])
    with pytest.raises(BodyModelFormatError, match='t.ply: truncated'):
        read_ply_vertices(tmp_path / 't.ply')
    path = tmp_path / 'x_stageii.pkl'
    path.write_bytes(pickle.dumps({'fullpose': np.zeros((4, 156)), 'trans': np.zeros((4, 3))}))
    with pytest.raises(MOYOFormatError, match=r'x_stageii.pkl: fullpose \(4, 156\)') as info:
        load_fits(path)
    assert '\n' not in str(info.value)
