import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import realdata_file
from tests.fakes import genebody as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def run_recipe(data_root, name='genebody'):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    return subprocess.run(['bash', str(REPO / f'posepile/ds/{name}/main.sh')], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def expected_images(release):
    """The original's rules re-stated: train subjects on disk, the sampler (100 mm, buffer 100) on the scaled
    joints (mm) of each subject's frames in file order, then every view whose mask is not empty."""
    from posepile.util.sampling import select_frames
    kept = []
    for subject in fake.SUBJECTS:
        frames = [f for f in release['frames'] if f['subject'] == subject]
        poses = np.stack([f['joints_m'] * 1000 for f in frames])
        chosen = {frames[i]['frame'] for i in select_frames(poses, 100, buffer_size=100, check_validity=True,
                                                             nan_unchanged=True)}
        kept += [i for i in release['images'] if i['subject'] == subject and i['frame'] in chosen
                 and not i['empty_mask']]
    return kept


def test_genebody_recipe_on_fake_release(data_root):
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.storage.annotations import load_dataset
    from posepile.util import masks
    release = fake.write_fake_release(data_root)
    result = run_recipe(data_root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'zhuna' in result.stderr  # the absent train subject is reported
    dataset = load_dataset(data_root / 'cache' / 'genebody.posepile')
    kept = expected_images(release)
    # amanda: 4 frames -> 3 kept (the 0.0005 rad change is not) x 3 views - 1 empty mask = 8; barry 2 x 2 = 4
    assert len(kept) == 12
    assert sorted(ex.image_path for ex in dataset.examples[0]) == sorted(
        i['relpath'].replace('genebody/', 'genebody_downscaled/', 1) for i in kept)
    assert not dataset.examples[1] and not dataset.examples[2] and dataset.joint_info.n_joints == 0

    frames = {(f['subject'], f['frame']): f for f in release['frames']}
    images = {i['relpath'].replace('genebody/', 'genebody_downscaled/', 1): i for i in release['images']}
    models = {g: bodymodels.load('smplx', g, data_root / 'body_models') for g in ('female', 'male')}
    errors, joint_errors = [], []
    for example in dataset.examples[0]:
        image = images[example.image_path]
        truth = frames[(image['subject'], image['frame'])]
        params = example.parameters
        assert example.world_coords is None
        assert params['type'] == 'smplx' and params['gender'] == truth['gender'] and len(params['pose']) == 165
        assert params['scale'] == pytest.approx(truth['scale'])
        assert np.allclose(params['trans'], truth['fit']['transl'][0])
        model = models[truth['gender']]
        # GeneBody's keypoints3d convention s * SMPLX(**smplx).joints (transl inside) is ours: same world joints
        joint_errors.append(np.abs(parameter_joints_mm(params, model) - truth['joints_m'] * 1000).max())
        # world parameters -> the crop camera (rototranslate) -> forward kinematics -> projected = the dots
        in_camera = bodymodels.rototranslate(params, example.camera.R, example.camera.t / 1000, model=model)
        camera_joints = parameter_joints_mm(in_camera, model)
        pixels = camera_joints[:, :2] / camera_joints[:, 2:] * np.diag(example.camera.intrinsic_matrix)[:2] + \
            example.camera.intrinsic_matrix[:2, 2]
        assert example.camera.distortion_coeffs is None or not np.any(example.camera.distortion_coeffs)
        radius = max(3, int(round(2 * example.camera.intrinsic_matrix[0, 0] / fake.FOCAL_PX)))
        errors += dot_errors(data_root / example.image_path, pixels[:fake.N_DOTS], radius,
                             neighbours=pixels[:fake.N_DOTS])
        # the box and the mask come from the shipped mask (the joints' box + 4 px)
        mask = masks.decode(example.mask)
        points = np.round(pixels).astype(int)
        in_crop = np.all((points >= 0) & (points < [mask.shape[1], mask.shape[0]]), axis=1)
        assert in_crop.sum() > 20 and np.mean(mask[points[in_crop, 1], points[in_crop, 0]]) > 0.95  # edge joints: 1 px
    assert max(joint_errors) < 0.05, max(joint_errors)
    assert len(errors) > 3 * len(dataset.examples[0]), len(errors)
    assert np.median(errors) < 0.5 and np.max(errors) < 1.5, (np.median(errors), np.max(errors))


def test_bad_param_file_is_one_line(data_root):
    fake.write_fake_release(data_root)
    param = next((data_root / 'genebody/GeneBody-Train40/amanda/param').glob('*.npy'))
    np.save(param, {'smplx': {'betas': np.zeros(10)}, 'smplx_scale': 1.0}, allow_pickle=True)
    result = run_recipe(data_root)
    assert result.returncode != 0
    line = result.stderr.strip().splitlines()[-1]
    assert str(param) in line and 'lacks' in line and 'Traceback' not in result.stderr


def test_real_annots_and_param_file(realdata):
    """The real joseph_matanda annots.npy (40 cameras) and a real param file: our camera reading projects the
    file's own keypoints3d where the measured reference says (REFERENCE-nlf-era.md), and the fit is read with
    GeneBody's scale convention (X = s * SMPLX(pose, betas, transl): keypoints3d[0] / s - transl is the shaped
    rest pelvis, about 0.35 m below the model origin as in SMPL-X)."""
    from posepile.ds.genebody import main as genebody
    cameras = genebody.load_cameras(realdata_file(realdata, 'genebody/joseph_matanda/annots.npy'))
    assert sorted(cameras) == [f'{i:02d}' for i in (*range(39), 41)]
    fit, scale = genebody.load_fit(realdata_file(realdata, 'genebody/subject_unknown/param/0392.npy'))
    assert scale == pytest.approx(1.0498571854829788)
    raw = genebody._load(realdata / 'genebody/subject_unknown/param/0392.npy')
    keypoints_mm = np.asarray(raw['smplx']['keypoints3d'], np.float64).reshape(55, 3) * 1000
    for view, joint, expected in (('00', 0, (1333.08, 1013.58)), ('00', 15, (1352.73, 744.44)),
                                  ('25', 0, (1167.19, 891.49)), ('41', 0, (1236.31, 948.97))):
        np.testing.assert_allclose(cameras[view].world_to_image(keypoints_mm[joint:joint + 1])[0], expected, atol=0.02)
    for camera in cameras.values():  # every joint in every 2448x2048 image, the head above the pelvis
        pixels = camera.world_to_image(keypoints_mm)
        assert np.all((pixels > 0) & (pixels < [2448, 2048]))
        assert camera.world_to_image(keypoints_mm[15:16])[0, 1] < camera.world_to_image(keypoints_mm[:1])[0, 1]
    pelvis_offset = keypoints_mm[0] / 1000 / scale - fit['transl']
    np.testing.assert_allclose(pelvis_offset, (0.00063, -0.34557, 0.01371), atol=2e-5)
    assert fit['left_hand_pose'].size == 45 and len(fit['betas']) == 10 and len(fit['expression']) == 10
