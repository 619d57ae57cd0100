"""Shared mechanisms of the NLF-era parametric recipes: PCA hands, betas of a template mesh, rigid folding of
body-local fits, images read in place from zip / HDF5 members (crop stage included)."""
import io
import zipfile

import cv2
import numpy as np
import pytest

from posepile import bodymodels
from posepile.bodymodels import fitting, hands, rigid
from posepile.util import image_sources, improc
from tests.toy_bodymodels import toy_arrays, write_npz, write_toy_model


@pytest.fixture(scope='module')
def smplx_with_hands(tmp_path_factory):
    folder = tmp_path_factory.mktemp('smplx_hands')
    rng = np.random.default_rng(3)
    arrays = toy_arrays('smplx', 20, 1)
    extras = {'hands_componentsl': np.linalg.qr(rng.normal(size=(45, 45)))[0].T,
              'hands_componentsr': np.linalg.qr(rng.normal(size=(45, 45)))[0].T,
              'hands_meanl': rng.normal(0, 0.1, 45), 'hands_meanr': rng.normal(0, 0.1, 45)}
    path = folder / 'smplx' / 'SMPLX_NEUTRAL.npz'
    write_npz(path, arrays, **extras)
    return bodymodels.load('smplx', 'neutral', path), extras


def test_pca_hand_expansion_is_the_smplx_rule(smplx_with_hands):
    model, extras = smplx_with_hands
    pca = hands.hand_pca(model.path)
    coefficients = np.arange(1, 7) / 10  # 6 PCA coefficients
    expected = sum(c * extras['hands_componentsl'][i] for i, c in enumerate(coefficients)) + extras['hands_meanl']
    np.testing.assert_allclose(hands.full_hand_pose(coefficients, pca, 'left'), expected, atol=1e-12)
    full = np.full((15, 3), 0.01)  # full rotations (15 x 3): the mean is added (flat_hand_mean=False)
    np.testing.assert_allclose(hands.full_hand_pose(full, pca, 'right'), full.reshape(-1) + extras['hands_meanr'])
    pose = hands.smplx_full_pose(np.ones(3), np.zeros((21, 3)), left_hand_pose=coefficients,
                                 right_hand_pose=full, hand_pca=pca)
    assert pose.shape == (165,)
    np.testing.assert_allclose(pose[75:120], expected)
    np.testing.assert_allclose(pose[120:], full.reshape(-1) + extras['hands_meanr'])
    with pytest.raises(ValueError, match='46 hand PCA'):
        hands.expand_hand_pose(np.zeros(46), pca, 'left')


def test_betas_of_a_template_mesh_are_recovered(smplx_with_hands):
    model, _ = smplx_with_hands
    betas = np.random.default_rng(0).normal(0, 1, 8)
    mesh = model(np.zeros((1, 165)), betas[None])['vertices'][0].astype(np.float64)
    fitted, info = fitting.betas_of_template(model, mesh + [0.1, 0.2, 0.3], n_betas=8, fit_translation=True)
    np.testing.assert_allclose(fitted, betas, atol=1e-4)
    np.testing.assert_allclose(info['offset_m'], [0.1, 0.2, 0.3], atol=1e-5)
    assert info['rms_m'] < 1e-5
    with pytest.raises(bodymodels.BodyModelFormatError, match='vertices'):
        fitting.betas_of_template(model, mesh[:-1])


def test_easymocap_rh_th_folded_exactly(tmp_path):
    write_toy_model(tmp_path, 'smpl', 'neutral')
    model = bodymodels.load('smpl', 'neutral', tmp_path)
    rng = np.random.default_rng(5)
    pose = np.concatenate([[0, 0, 0], rng.normal(0, 0.3, 69)])
    params = {'type': 'smpl', 'gender': 'neutral', 'pose': pose, 'shape': rng.normal(0, 1, 10),
              'trans': np.zeros(3)}
    rh, th = np.array([1.41, 1.03, 0.96]), np.array([0.06, 0.57, 1.13])
    local = model(pose[None], params['shape'][None])['joints'][0]
    expected = local @ bodymodels.rotvec_to_matrix(rh).T + th  # X_world = Rodrigues(Rh) SMPL + Th
    world = rigid.apply_rotvec_translation(params, rh, th, model=model)
    got = model(world['pose'][None].astype(np.float64), params['shape'][None], world['trans'][None])['joints'][0]
    assert np.abs(got - expected).max() < 1e-6
    assert np.abs(world['trans'] - th).max() > 0.01  # the pelvis offset matters


def _jpeg(height, width, value):
    return improc.encode_jpeg(np.full((height, width, 3), value, np.uint8))


def test_zip_and_hdf5_members_are_read_in_place_and_cropped(tmp_path):
    h5py = pytest.importorskip('h5py')
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.cropping import make_efficient_example
    from posepile.preproc.pipeline import task_fingerprint
    from posepile.util.camera import Camera
    png = cv2.imencode('.png', np.full((200, 300, 3), 90, np.uint8))[1].tobytes()
    with zipfile.ZipFile(tmp_path / 'seq.zip', 'w') as z:
        z.writestr('seq/color/000000.png', png)
        z.writestr('seq/color/000001.jpg', _jpeg(200, 300, 150))
    with h5py.File(tmp_path / 'seq.smc', 'w') as f:
        f.create_dataset('Camera_5mp/25/color/000000', data=np.frombuffer(_jpeg(200, 300, 200), np.uint8))
    assert image_sources.zip_members(tmp_path / 'seq.zip') == ['seq/color/000000.png', 'seq/color/000001.jpg']
    camera = Camera(intrinsic_matrix=[[300, 0, 150], [0, 300, 100], [0, 0, 1]], world_up=(0, -1, 0))
    for member, value in (('seq.zip::seq/color/000000.png', 90), ('seq.zip::seq/color/000001.jpg', 150),
                          ('seq.smc::Camera_5mp/25/color/000000', 200)):
        data = image_sources.read_image_bytes(member, tmp_path)
        assert improc.image_size_from_header(data) == (200, 300)
        example = Pose3DExample(member, None, bbox=np.array([100, 50, 60, 100], np.float32), camera=camera,
                                parameters={'type': 'smpl', 'trans': np.zeros(3)})
        cropped = make_efficient_example(example, f'crops/{value}.jpg', data_root=tmp_path)
        crop = improc.imread_rgb(tmp_path / f'crops/{value}.jpg')
        assert abs(float(np.median(crop)) - value) <= 2
        assert cropped.parameters is example.parameters and cropped.world_coords is None
        assert task_fingerprint(('k', example, 'x.jpg'), tmp_path, {}) == \
            task_fingerprint(('k', example, 'x.jpg'), tmp_path, {})
    with pytest.raises(image_sources.ImageSourceError, match="seq.zip: no member 'nope.png'"):
        image_sources.read_image_bytes('seq.zip::nope.png', tmp_path)
    with pytest.raises(image_sources.ImageSourceError, match="seq.smc: no dataset 'x/y'"):
        image_sources.read_image_bytes('seq.smc::x/y', tmp_path)
    with zipfile.ZipFile(tmp_path / 'cut.zip', 'w') as z:
        z.writestr('a.jpg', _jpeg(20, 20, 1)[:-300])
    with pytest.raises(improc.ImageDecodeError, match='cut.zip::a.jpg: truncated JPEG'):
        image_sources.read_image_bytes('cut.zip::a.jpg', tmp_path)
    written = image_sources.convert_zip_images_to_jpeg(tmp_path / 'seq.zip', tmp_path / 'jpg')
    assert [p.relative_to(tmp_path / 'jpg').as_posix() for p in written] == ['seq/color/000000.jpg']
    assert improc.image_size_from_header(written[0]) == (200, 300)
    assert io.BytesIO(written[0].read_bytes()).read(2) == b'\xff\xd8'


def test_parametric_only_examples_survive_the_dataset_cache(tmp_path):
    from posepile.datasets3d import Pose3DDataset, Pose3DExample
    from posepile.joint_info import JointInfo
    from posepile.storage import annotations
    from posepile.util.camera import Camera
    camera = Camera(intrinsic_matrix=[[300, 0, 150], [0, 300, 100], [0, 0, 1]], world_up=(0, -1, 0))
    params = {'type': 'smplx', 'gender': 'female', 'pose': np.arange(165, dtype=np.float32),
              'shape': np.ones(10, np.float32), 'trans': np.zeros(3, np.float32), 'scale': 1.05}
    dataset = Pose3DDataset(JointInfo([], []), [Pose3DExample('a/b.jpg', None, [1, 2, 3, 4], camera,
                                                              parameters=params)])
    loaded = annotations.load_dataset(annotations.save_dataset(dataset, tmp_path / 'p.posepile'))
    example = loaded.examples[0][0]
    assert example.world_coords is None and loaded.joint_info.n_joints == 0  # not a (0, 3) array
    np.testing.assert_array_equal(example.parameters['pose'], params['pose'])
    assert example.parameters['scale'] == 1.05
