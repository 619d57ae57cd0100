"""posepile.bodymodels.transform: parameters rototranslated into a camera frame give exactly the world joints and
vertices mapped into the camera (toy SMPL, SMPL+H, SMPL-X models from tests/toy_bodymodels.py)."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posepile import bodymodels
from posepile.bodymodels import transform
from posepile.util.camera import Camera
from tests.toy_bodymodels import write_toy_model

GENDERS = {'smpl': 'male', 'smplh': 'female', 'smplx': 'neutral'}


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp('models')
    result = {}
    for seed, (model_type, gender) in enumerate(GENDERS.items()):
        write_toy_model(root, model_type, gender, n_shape=20 if model_type == 'smplx' else 10, seed=seed)
        result[model_type] = bodymodels.load(model_type, gender, root)
    return result


def random_camera(rng):
    rotation = Rotation.from_rotvec(rng.normal(0, 1.2, 3)).as_matrix()
    return Camera(optical_center=rng.uniform(-3000, 3000, 3), rot_world_to_cam=rotation,
                  intrinsic_matrix=[[1000, 0, 960], [0, 1000, 540], [0, 0, 1]])


@pytest.mark.parametrize('model_type', ['smpl', 'smplh', 'smplx'])
def test_camera_frame_parameters_reproduce_world_joints_in_the_camera(models, model_type):
    model = models[model_type]
    rng = np.random.default_rng(7)
    for _ in range(5):
        params = {'type': model_type, 'gender': GENDERS[model_type],
                  'pose': rng.normal(0, 0.6, model.n_joints * 3).astype(np.float32),
                  'shape': rng.normal(0, 1.5, 10).astype(np.float32),
                  'trans': rng.uniform(-2, 2, 3).astype(np.float32)}
        if model_type == 'smplx':
            params['expression'] = rng.normal(0, 1, 10).astype(np.float32)
        camera = random_camera(rng)
        world_mm = transform.parameter_joints_mm(params, model)
        cam_params = transform.camera_frame_parameters(params, camera, model)
        assert cam_params['pose'].dtype == np.float32 and cam_params['trans'].dtype == np.float32
        assert sorted(cam_params) == sorted(params) and cam_params['type'] == model_type
        np.testing.assert_array_equal(cam_params['pose'][3:], params['pose'][3:])  # only the root turns
        from_params = transform.parameter_joints_mm(cam_params, model)
        error = np.linalg.norm(from_params - camera.world_to_camera(world_mm), axis=-1).max()
        assert error < 0.1, error
        # the pelvis offset matters: rotating trans alone is centimetres off
        naive = dict(cam_params, trans=camera.R @ (params['trans'] - camera.t / 1000))
        assert np.linalg.norm(transform.parameter_joints_mm(naive, model) - from_params, axis=-1).max() > 1


def test_vertices_move_rigidly_too_and_batches_match_single(models):
    model = models['smplx']
    rng = np.random.default_rng(3)
    pose, betas, trans = rng.normal(0, 0.5, (4, 165)), rng.normal(0, 1, (4, 10)), rng.normal(0, 1, (4, 3))
    R = Rotation.from_rotvec([0.3, -1.1, 2.0]).as_matrix()
    t = np.array([0.5, -1.0, 2.0])
    new_pose, new_trans = transform.rototranslate(pose, betas, trans, R, t, model)
    world = model(pose, betas, trans)
    cam = model(new_pose, betas, new_trans)
    np.testing.assert_allclose(cam['vertices'], (world['vertices'] - t) @ R.T, atol=2e-5)
    np.testing.assert_allclose(cam['joints'], (world['joints'] - t) @ R.T, atol=1e-9)
    single_pose, single_trans = transform.rototranslate(pose[1], betas[1], trans[1], R, t, model)
    np.testing.assert_allclose(single_pose, new_pose[1], atol=1e-12)
    np.testing.assert_allclose(single_trans, new_trans[1], atol=1e-12)


def test_formula_by_hand_and_identity(models):
    model = models['smpl']
    betas = np.linspace(-1, 1, 10)
    pelvis = transform.rest_pelvis(model, betas)
    trans = np.array([0.1, 0.2, 0.3])
    R = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])  # 90 degrees about z
    t = np.array([1.0, 0, 0])
    pose = np.zeros(72)
    new_pose, new_trans = transform.rototranslate(pose, betas, trans, R, t, model)
    np.testing.assert_allclose(new_pose[:3], [0, 0, np.pi / 2], atol=1e-12)
    np.testing.assert_allclose(new_trans, R @ (trans + pelvis - t) - pelvis, atol=1e-12)
    same_pose, same_trans = transform.rototranslate(pose, betas, trans, np.eye(3), np.zeros(3), model)
    np.testing.assert_allclose(same_trans, trans, atol=1e-12)
    with pytest.raises(ValueError, match='scale'):
        transform.to_camera_frame({'pose': pose, 'shape': betas, 'trans': trans, 'scale': -1.0}, R, t, model)
    with pytest.raises(ValueError, match='mirrored camera'):
        transform.to_camera_frame({'pose': pose, 'shape': betas, 'trans': trans}, np.diag([-1.0, 1, 1]) @ R, t, model)


def test_scaled_fits_turn_with_the_scaled_pelvis(models):
    """HUMBI-style fits: points = scale * model(pose, shape, 0) + trans; the scale is kept and the translation
    accounts for the scaled pelvis (trans' = R (trans + s J0 - c) - s J0)."""
    model = models['smpl']
    rng = np.random.default_rng(11)
    for scale in (0.93, 1.0, 1.07):
        params = {'type': 'smpl', 'gender': 'male', 'scale': scale,
                  'pose': rng.normal(0, 0.6, 72).astype(np.float32), 'shape': rng.normal(0, 1.5, 10).astype(np.float32),
                  'trans': rng.uniform(-2, 2, 3).astype(np.float32)}
        world_mm = transform.parameter_joints_mm(params, model)
        by_hand = model(params['pose'][None], params['shape'][None], None, return_vertices=False)['joints'][0]
        np.testing.assert_allclose(world_mm, (by_hand * scale + params['trans']) * 1000, atol=1e-9)
        camera = random_camera(rng)
        cam_params = transform.camera_frame_parameters(params, camera, model)
        assert cam_params['scale'] == scale
        error = np.linalg.norm(transform.parameter_joints_mm(cam_params, model) - camera.world_to_camera(world_mm),
                               axis=-1).max()
        assert error < 0.1, error
        # vertices too: the whole scaled mesh moves rigidly
        world_v = model(params['pose'][None], params['shape'][None], None)['vertices'][0] * scale + params['trans']
        cam_v = (model(cam_params['pose'][None], cam_params['shape'][None], None)['vertices'][0] * scale
                 + cam_params['trans'])
        np.testing.assert_allclose(cam_v * 1000, camera.world_to_camera(world_v * 1000), atol=0.1)
