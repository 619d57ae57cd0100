"""EHF evaluator: the real camera and frame-01 mesh (realdata), and the metrics on a fake EHF folder with a toy
SMPL-X (10475 vertices) and fake vertex-id / regressor files in the official formats; expected numbers by hand."""
import pickle
import shutil

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posepile.ds.ehf import eval as ehf_eval
from posepile.eval.predictions import PredictionError
from tests.conftest import realdata_file
from tests.toy_bodymodels import write_toy_smplx_full


@pytest.mark.realdata
def test_real_camera_projects_vertex_0_of_frame_01(realdata):
    camera = ehf_eval.read_camera(realdata_file(realdata, 'ehf/EHF/EHF_camera.txt'))
    vertices = ehf_eval.read_ply_vertices(realdata_file(realdata, 'ehf/EHF/01_align.ply'))
    assert vertices.shape == (10475, 3)
    np.testing.assert_allclose(vertices[0], [0.10199582, 0.88957179, 0.12185822], atol=1e-7)
    cam = vertices @ camera['R'].T + camera['t']
    np.testing.assert_allclose(ehf_eval.project(cam[0], camera), [837.0681, 276.6226], atol=1e-3)
    assert 1.58 < cam[:, 2].min() < 1.59 and 2.83 < cam[:, 2].max() < 2.85  # REFERENCE: 1.587-2.840 m


@pytest.fixture(scope='module')
def assets_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp('smplx')
    write_toy_smplx_full(folder, 'neutral')
    rng = np.random.default_rng(0)
    j14 = np.zeros((14, 10475))
    j14[np.arange(14), rng.choice(10475, 14, replace=False)] = 1.0
    with open(folder / 'SMPLX_to_J14.pkl', 'wb') as f:
        pickle.dump(j14, f, protocol=2)
    with open(folder / 'MANO_SMPLX_vertex_ids.pkl', 'wb') as f:
        pickle.dump({'left_hand': np.arange(4000, 4778), 'right_hand': np.arange(7000, 7778)}, f, protocol=2)
    np.save(folder / 'SMPL-X__FLAME_vertex_ids.npy', np.arange(8800, 8800 + 5023) % 10475)
    return folder


@pytest.fixture(scope='module')
def assets(assets_dir):
    return ehf_eval.load_assets(assets_dir)


def _gt(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 300, (n, 10475, 3)) + [0, 0, 2500]


def test_assets_and_missing_file_error(assets, assets_dir, tmp_path):
    assert assets['hand_regressors']['left'].shape == (21, 10475)
    assert assets['hand_regressors']['right'][4, 8079] == 1  # thumb tip vertex after wrist + 3 thumb joints
    for name in ehf_eval.ASSET_FILES.values():
        shutil.copy(assets_dir / name, tmp_path / name)
    (tmp_path / 'SMPLX_to_J14.pkl').unlink()
    with pytest.raises(ehf_eval.EHFFormatError, match=r'SMPLX_to_J14.pkl: missing'):
        ehf_eval.load_assets(tmp_path)


def test_identity_translation_and_similarity(assets):
    gt = _gt()
    zero = ehf_eval.evaluate(gt, gt + [10.0, -20, 30], assets)
    for key, value in zero.items():
        np.testing.assert_allclose(value, 0, atol=1e-8, err_msg=key)
    Q = Rotation.from_rotvec([0.2, -0.4, 0.1]).as_matrix()
    turned = 0.9 * gt @ Q.T + [5.0, 6, 7]
    r = ehf_eval.evaluate(gt, turned, assets)
    for key in ('PA-MPVPE all', 'PA-MPVPE hands', 'PA-MPVPE face', 'PA-MPJPE body', 'PA-MPJPE hands'):
        np.testing.assert_allclose(r[key], 0, atol=1e-7, err_msg=key)
    # MPVPE all: translated at the J_regressor pelvis, so the error is |(0.9 Q - I)(v - pelvis)|
    pelvis = np.einsum('v,nvc->nc', assets['J_regressor'][0], gt)[:, None]
    expected = np.linalg.norm((gt - pelvis) @ (0.9 * Q - np.eye(3)).T, axis=-1).mean(axis=1)
    np.testing.assert_allclose(r['MPVPE all'], expected, rtol=1e-10)


def test_hand_wrist_alignment_by_hand(assets):
    """Only the left hand's vertices moved by +8 mm in x: left MPVPE hands 8 mm minus what the wrist moved."""
    gt = _gt(n=1)
    pred = gt.copy()
    left = assets['hand_vertices']['left']
    pred[:, left] += [8.0, 0, 0]
    r = ehf_eval.evaluate(gt, pred, assets)
    wrist_shift = 8.0 * assets['J_regressor'][20, left].sum()
    assert r['MPVPE hands'][0] == pytest.approx(abs(8.0 - wrist_shift) / 2, rel=1e-9)  # right hand error 0
    assert r['PA-MPVPE hands'][0] == pytest.approx(0, abs=1e-8)  # a pure shift of one hand


def _fake_ehf(folder, gt_world_m, camera_txt):
    folder.mkdir()
    (folder / 'EHF_camera.txt').write_text(camera_txt)
    header = (f'ply\nformat binary_little_endian 1.0\nelement vertex {gt_world_m.shape[1]}\nproperty float x\n'
              'property float y\nproperty float z\nelement face 0\nproperty list uchar int vertex_indices\n'
              'end_header\n').encode()
    for i, vertices in enumerate(gt_world_m, 1):
        (folder / f'{i:02d}_align.ply').write_bytes(header + vertices.astype('<f4').tobytes())


CAMERA_TXT = """##################
### Intrinsics ###
##################

### Focal length - (2, 1)
[[1498.22426237]
 [1498.22426237]]

### Distortion Coefficients - (5,)
[0. 0. 0. 0. 0.]

### Principal Point -  (2, 1)
[[790.263706]
 [578.90334 ]]

##################
### Extrinsics ###
##################

### Translation -  (3, 1)
[[-0.03609917]
 [ 0.43416458]
 [ 2.37101226]]

### Rotation -  (3, 1)
[[-2.98747896]
 [ 0.01172457]
 [-0.05704687]]"""


def test_cli_on_a_fake_folder(tmp_path, assets_dir, capsys):
    world = np.random.default_rng(3).normal(0, 0.3, (2, 10475, 3)).astype(np.float32)
    _fake_ehf(tmp_path / 'EHF', world, CAMERA_TXT)
    names, gt, camera = ehf_eval.ground_truth(tmp_path / 'EHF')
    assert names == ['01', '02']
    np.testing.assert_allclose(gt[1, 5], (world[1, 5].astype(np.float64) @ camera['R'].T + camera['t']) * 1000)
    np.savez(tmp_path / 'p.npz', image_path=np.array(['01_img.jpg', 'ehf/EHF/02_img.jpg']),
             vertices3d_pred_cam=gt + [1.0, 2, 3])
    r = ehf_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--smplx-dir', str(assets_dir), '--ehf-root',
                       str(tmp_path / 'EHF')])
    assert 'EHF: 2 frames' in capsys.readouterr().out
    assert r['MPVPE all'] == pytest.approx(0, abs=1e-6) and r['PA-MPJPE hands'] == pytest.approx(0, abs=1e-6)
    np.savez(tmp_path / 'm.npz', image_path=np.array(['01_img.jpg', '02_img.jpg']), vertices3d_pred_cam=gt / 1000)
    with pytest.raises(PredictionError, match='metres given'):
        ehf_eval.main(['--pred-path', str(tmp_path / 'm.npz'), '--smplx-dir', str(assets_dir), '--ehf-root',
                       str(tmp_path / 'EHF')])
