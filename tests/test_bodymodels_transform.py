"""posepile.bodymodels.transform: world-frame parameters rototranslated into a camera frame give exactly the world
joints and vertices mapped into the camera (toy SMPL, SMPL+H, SMPL-X models from tests/toy_bodymodels.py), and
the result is smplfitter's rototranslate as NLF calls it (its formula re-stated here)."""
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
        cam_params = bodymodels.rototranslate(params, camera.R, camera.t / 1000, model=model)
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
    new_pose, new_trans = transform.rototranslate_arrays(pose, betas, trans, R, t, model)
    world = model(pose, betas, trans)
    cam = model(new_pose, betas, new_trans)
    np.testing.assert_allclose(cam['vertices'], (world['vertices'] - t) @ R.T, atol=2e-5)
    np.testing.assert_allclose(cam['joints'], (world['joints'] - t) @ R.T, atol=1e-9)
    single_pose, single_trans = transform.rototranslate_arrays(pose[1], betas[1], trans[1], R, t, model)
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
    new_pose, new_trans = transform.rototranslate_arrays(pose, betas, trans, R, t, model)
    np.testing.assert_allclose(new_pose[:3], [0, 0, np.pi / 2], atol=1e-12)
    np.testing.assert_allclose(new_trans, R @ (trans + pelvis - t) - pelvis, atol=1e-12)
    same_pose, same_trans = transform.rototranslate_arrays(pose, betas, trans, np.eye(3), np.zeros(3), model)
    np.testing.assert_allclose(same_trans, trans, atol=1e-12)
    with pytest.raises(ValueError, match='scale'):
        bodymodels.rototranslate({'pose': pose, 'shape': betas, 'trans': trans, 'scale': -1.0}, R, t, model=model)
    with pytest.raises(ValueError, match='mirrored camera'):
        bodymodels.rototranslate({'pose': pose, 'shape': betas, 'trans': trans}, np.diag([-1.0, 1, 1]) @ R, t,
                                 model=model)
    with pytest.raises(ValueError, match='kid_factor'):
        bodymodels.rototranslate({'pose': pose, 'shape': betas, 'trans': trans, 'kid_factor': 0.5}, R, t, model=model)
    # a zero kid_factor (AGORA adults written as the original) is fine
    bodymodels.rototranslate({'pose': pose, 'shape': betas, 'trans': trans, 'kid_factor': 0.0}, R, t, model=model)


def test_scaled_fits_turn_with_the_scaled_pelvis(models):
    """Scaled fits (NLF's convention): points = scale * model(pose, shape, trans); the scale is kept and the
    translation accounts for the pelvis (trans' = R (trans + J0 - c / s) - J0)."""
    model = models['smpl']
    rng = np.random.default_rng(11)
    for scale in (0.93, 1.0, 1.07):
        params = {'type': 'smpl', 'gender': 'male', 'scale': scale,
                  'pose': rng.normal(0, 0.6, 72).astype(np.float32), 'shape': rng.normal(0, 1.5, 10).astype(np.float32),
                  'trans': rng.uniform(-2, 2, 3).astype(np.float32)}
        world_mm = transform.parameter_joints_mm(params, model)
        by_hand = model(params['pose'][None], params['shape'][None], params['trans'][None],
                        return_vertices=False)['joints'][0]
        np.testing.assert_allclose(world_mm, by_hand * scale * 1000, atol=1e-9)
        camera = random_camera(rng)
        cam_params = bodymodels.rototranslate(params, camera.R, camera.t / 1000, model=model)
        assert cam_params['scale'] == scale
        error = np.linalg.norm(transform.parameter_joints_mm(cam_params, model) - camera.world_to_camera(world_mm),
                               axis=-1).max()
        assert error < 0.1, error
        # vertices too: the whole scaled mesh moves rigidly
        world_v = model(params['pose'][None], params['shape'][None], params['trans'][None])['vertices'][0] * scale
        cam_v = model(cam_params['pose'][None], cam_params['shape'][None], cam_params['trans'][None])['vertices'][0]
        np.testing.assert_allclose(cam_v * scale * 1000, camera.world_to_camera(world_v * 1000), atol=0.1)


def smplfitter_rototranslate(R, t, pose, pelvis, trans):
    """smplfitter's BodyModel.rototranslate(R, t, pose, shape, trans, post_translate=False) re-stated from its
    documented formula (row vectors): root R @ G_root, trans' = (trans - t) R^T + pelvis (R^T - I)."""
    new_pose = np.array(pose, np.float64)
    new_pose[:3] = Rotation.from_matrix(R @ Rotation.from_rotvec(new_pose[:3]).as_matrix()).as_rotvec()
    return new_pose, (trans - t) @ R.T + pelvis @ (R.T - np.eye(3))


def test_equals_smplfitter_as_nlf_calls_it(models):
    """NLF: bm.rototranslate(cam.R, cam.t / 1000 / scale, pose, shape, trans, kid_factor, post_translate=False)."""
    model = models['smpl']
    rng = np.random.default_rng(5)
    for scale in (1.0, 0.9):
        params = {'type': 'smpl', 'gender': 'male', 'scale': scale, 'pose': rng.normal(0, 0.6, 72),
                  'shape': rng.normal(0, 1.5, 10), 'trans': rng.uniform(-2, 2, 3)}
        camera = random_camera(rng)
        ours = bodymodels.rototranslate(params, camera.R, camera.t / 1000, model=model)
        pelvis = model.J_regressor[0] @ (model(np.zeros((1, 72)), params['shape'][None])['vertices'][0])
        nlf_pose, nlf_trans = smplfitter_rototranslate(camera.R, camera.t / 1000 / scale, params['pose'], pelvis,
                                                       params['trans'])
        np.testing.assert_allclose(ours['trans'], nlf_trans, atol=1e-5)
        np.testing.assert_allclose(Rotation.from_rotvec(ours['pose'][:3]).as_matrix(),
                                   Rotation.from_rotvec(nlf_pose[:3]).as_matrix(), atol=1e-5)


def test_model_loaded_from_type_and_gender(models, tmp_path, monkeypatch):
    write_toy_model(tmp_path / 'body_models', 'smpl', 'male', seed=0)
    monkeypatch.setenv('DATA_ROOT', str(tmp_path))
    model = models['smpl']  # the same toy (seed 0)
    params = {'type': 'smpl', 'gender': 'm', 'pose': np.full(72, 0.1), 'shape': np.ones(10), 'trans': np.ones(3)}
    R = Rotation.from_rotvec([0.2, 0.5, -0.4]).as_matrix()
    explicit = bodymodels.rototranslate(params, R, [1, 2, 3], model=model)
    loaded = bodymodels.rototranslate(params, R, [1, 2, 3])
    np.testing.assert_array_equal(explicit['trans'], loaded['trans'])
    np.testing.assert_array_equal(bodymodels.parameter_joints_mm(params), transform.parameter_joints_mm(params, model))
