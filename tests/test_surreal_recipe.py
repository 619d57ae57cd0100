import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from posepile.util import masks
from posepile.util.sampling import select_frames
from tests.markers import dot_errors
from tests.fakes import surreal as fake

REPO = Path(__file__).resolve().parent.parent


def test_surreal_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'surreal')
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/surreal/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'surreal.posepile')
    assert len(dataset.examples[0]) == len(select_frames(written['train'], 100))
    assert len(dataset.examples[2]) == len(select_frames(written['test'], 100))
    # the joints in the original's order: SMPL 1..23, then the pelvis
    assert dataset.joint_info.names[23] == 'pelv' and dataset.joint_info.names[:2] == ['lhip', 'rhip']
    # the gendered SMPL fit in the world frame (that of world_coords and of the example's mirrored-back camera):
    # its joints are the world joints (here the toy model's joints of the fit, as SURREAL's joints3D), and
    # rototranslated into the example's (crop) camera, or any other camera, they are the world joints seen by
    # that camera, left and right included, < 0.1 mm
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from tests.toy_bodymodels import other_camera, roundtrip_errors_mm
    models = {g: bodymodels.load('smpl', g, data_root / 'body_models') for g in ('female', 'male')}
    param_errors = []
    for split, index in (('train', 0), ('test', 2)):
        fit = written['fits'][split]
        for example in dataset.examples[index]:
            frame = int(example.image_path.rsplit('_', 1)[1][:-len('.jpg')])
            params = example.parameters
            assert params['type'] == 'smpl' and params['gender'] == ('female', 'male')[fit['gender']]
            np.testing.assert_allclose(params['shape'], fit['shape'][frame], atol=1e-6)
            np.testing.assert_allclose(params['pose'][3:], fit['pose'][frame][3:], atol=1e-6)
            model = models[params['gender']]
            world = written[split][frame]  # SMPL order
            np.testing.assert_allclose(example.world_coords, world[[*range(1, 24), 0]], atol=1e-3)
            assert np.linalg.norm(parameter_joints_mm(params, model) - world, axis=-1).max() < 0.1
            param_errors += roundtrip_errors_mm(params, world, [example.camera, other_camera(frame)], model)
    assert len(param_errors) == 2 * (len(dataset.examples[0]) + len(dataset.examples[2]))
    assert max(param_errors) < 0.1, max(param_errors)
    print('surreal round-trip max error (mm):', max(param_errors))
    errors = []
    for example in list(dataset.examples[0])[:8] + list(dataset.examples[2])[:8]:
        # the mirrored-back camera is a proper rotation (right-handed)
        assert np.linalg.det(example.camera.R) > 0.99
        projected = example.camera.world_to_image(example.world_coords)
        # the mask (from the part labels) covers the joints in the crop
        mask = masks.decode(example.mask)
        inside = [mask[int(round(v)), int(round(u))] for u, v in projected
                  if 0 <= round(u) < mask.shape[1] and 0 <= round(v) < mask.shape[0]]
        assert np.mean(inside) > 0.9
        r = max(3, int(round(4 * example.camera.intrinsic_matrix[0, 0] / 600)))
        errors += dot_errors(data_root / example.image_path, projected, r)
    assert len(errors) > 20
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def _rest_bones_over_frames(world_root, pose, joints_m):
    """(N, 23, 3) G_parent^T (J_child - J_parent) per frame: constant over frames iff the joints are the forward
    kinematics of the pose (root `world_root`) with one rest skeleton."""
    from posepile.bodymodels import rotvec_to_matrix
    parents = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
    local = rotvec_to_matrix(pose.reshape(len(pose), 24, 3))
    glob = [world_root]
    for j in range(1, 24):
        glob.append(glob[parents[j]] @ local[:, j])
    return np.stack([np.einsum('nji,nj->ni', glob[parents[j]], joints_m[:, j] - joints_m[:, parents[j]])
                     for j in range(1, 24)], axis=1)


def test_released_joints_are_the_smpl_kinematics_of_the_pose_with_zrot_folded_in(realdata):
    """On the real clip 01_01_c0001: joints3D are exactly the forward kinematics of the released pose with the root
    Rx(90) Rz(zrot) R(pose[:3]) (what the stored parameters use) and one rest skeleton; the same joints mirrored are
    not (so the world fit needs no mirroring: the mirrored-back camera is a proper rotation)."""
    from posepile.bodymodels import rotvec_to_matrix
    from posepile.ds.surreal import main as surreal
    path = realdata / 'surreal' / '01_01_c0001_info.mat'
    if not path.exists():
        pytest.skip(f'{path} not found')
    info = surreal.load_info(path)
    genders, world_pose, betas = surreal.load_smpl_fits(info, path)
    assert len(world_pose) == 100 and set(genders) == {'male'} and np.ptp(betas, axis=0).max() == 0
    joints_m = surreal.load_joints3d_mm(info).astype(np.float64) / 1000
    root = rotvec_to_matrix(world_pose[:, :3])
    bones = _rest_bones_over_frames(root, world_pose, joints_m)
    spread_mm = 1000 * np.abs(bones - bones.mean(0)).max()
    assert spread_mm < 0.01, spread_mm  # float32 joints3D: 0.0003 mm
    assert bones.mean(0)[0, 0] > 0.05 > -0.05 > bones.mean(0)[1, 0]  # SMPL's left hip at +x, right hip at -x
    mirrored = _rest_bones_over_frames(root, world_pose, joints_m * [-1, 1, 1])
    assert 1000 * np.abs(mirrored - mirrored.mean(0)).max() > 50
    camera = surreal.mirrored_camera(surreal.load_camera(path))
    assert np.linalg.det(camera.R) > 0.99 and np.linalg.det(surreal.load_camera(path).R) < -0.99
