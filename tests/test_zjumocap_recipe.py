import base64
import json

import cv2
import numpy as np

from tests.conftest import realdata_file
from tests.fakes import zjumocap as fake
from tests.markers import dot_errors
from tests.test_genebody_recipe import run_recipe


def expected_images(release):
    """The rules re-stated: per sequence the sampler (100 mm, buffer 100) on the world SMPL joints (mm) of every
    frame, then every camera whose mask (mask/ or mask_cihp/) is not empty."""
    from posepile.util.sampling import select_frames
    kept = []
    for seq in fake.SEQUENCES:
        frames = [f for f in release['frames'] if f['seq'] == seq]
        chosen = {frames[i]['index'] for i in select_frames(np.stack([f['joints_m'] * 1000 for f in frames]), 100,
                                                             buffer_size=100, check_validity=True,
                                                             nan_unchanged=True)}
        kept += [i for i in release['images'] if i['seq'] == seq and i['index'] in chosen and not i['empty_mask']]
    return kept


def test_zjumocap_recipe_on_fake_release(data_root):
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.storage.annotations import load_dataset
    release = fake.write_fake_release(data_root)
    result = run_recipe(data_root, 'zjumocap')
    assert result.returncode == 0, result.stderr[-3000:]
    dataset = load_dataset(data_root / 'cache' / 'zjumocap.posepile')
    kept = expected_images(release)
    # 377: 4 frames -> 3 (the 0.0005 rad change is not kept) x 3 cameras - 1 empty mask = 8; 313: 2 x 2 = 4
    assert len(kept) == 12
    assert sorted(ex.image_path for ex in dataset.examples[0]) == sorted(
        i['relpath'].replace('zjumocap/', 'zjumocap_downscaled/', 1) for i in kept)
    model = bodymodels.load('smpl', 'neutral', data_root / 'body_models')
    frames = {(f['seq'], f['index']): f for f in release['frames']}
    images = {i['relpath'].replace('zjumocap/', 'zjumocap_downscaled/', 1): i for i in release['images']}
    errors, world_errors = [], []
    for example in dataset.examples[0]:
        image = images[example.image_path]
        truth = frames[(image['seq'], image['index'])]
        params = example.parameters
        assert example.world_coords is None and params['type'] == 'smpl' and params['gender'] == 'neutral'
        # Rh/Th folded into the root: the world joints R_h SMPL + T_h, not a shifted body (the pelvis offset)
        world_errors.append(np.abs(parameter_joints_mm(params, model) - truth['joints_m'] * 1000).max())
        assert np.abs(params['trans'] - truth['fit']['Th']).max() > 0.01
        in_camera = bodymodels.rototranslate(params, example.camera.R, example.camera.t / 1000, model=model)
        joints = parameter_joints_mm(in_camera, model)
        K = example.camera.intrinsic_matrix
        pixels = joints[:, :2] / joints[:, 2:] * np.diag(K)[:2] + K[:2, 2]
        radius = max(3, int(round(2 * K[0, 0] / fake.FOCAL_PX)))
        errors += dot_errors(data_root / example.image_path, pixels, radius)
    assert max(world_errors) < 0.05, max(world_errors)
    assert len(errors) > 3 * len(dataset.examples[0]), len(errors)
    assert np.median(errors) < 0.5 and np.max(errors) < 1.5, (np.median(errors), np.max(errors))


def test_missing_fit_is_one_line(data_root):
    fake.write_fake_release(data_root)
    missing = data_root / 'zjumocap/CoreView_313/new_params/2.npy'
    missing.unlink()
    result = run_recipe(data_root, 'zjumocap')
    assert result.returncode != 0
    line = result.stderr.strip().splitlines()[-1]
    assert str(missing) in line and 'not found' in line and 'Traceback' not in result.stderr


def test_real_377_fits_fold_exactly(realdata, tmp_path):
    """The authors' EasyMocap fits of sequence 377 (poses, shapes, Rh, Th): written as new_params/<i>.npy, read
    and folded by the recipe, their world joints equal Rodrigues(Rh) SMPL(poses, shapes) + Th computed here
    (toy SMPL: the real model is not available), within 1e-4 mm, for frames 0, 300 and 616."""
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.ds.zjumocap import main as zju
    from tests.fakes.genebody import forward_kinematics
    from tests.toy_bodymodels import PARENTS, write_toy_model
    data = json.loads(realdata_file(realdata, 'zju_mocap/_derived_official_site/377/smpl.json').read_text())
    n = data['nframes']
    arrays = {k: np.frombuffer(base64.b64decode(data[k]), '<f4').reshape(n if k != 'shapes' else 1, -1)
              for k in ('shapes', 'poses', 'Rh', 'Th')}
    assert n == 617 and arrays['poses'].shape == (617, 72) and np.abs(arrays['poses'][:, :3]).max() == 0
    np.testing.assert_allclose(arrays['Rh'][0], (1.4101650, 1.0266900, 0.9554920), atol=1e-6)
    toy, _ = write_toy_model(tmp_path, 'smpl', 'neutral', seed=3)
    model = bodymodels.load('smpl', 'neutral', tmp_path)
    for i in (0, 300, 616):
        path = tmp_path / 'new_params' / f'{i}.npy'
        path.parent.mkdir(exist_ok=True)
        np.save(path, {'poses': arrays['poses'][i:i + 1], 'shapes': arrays['shapes'], 'Rh': arrays['Rh'][i:i + 1],
                       'Th': arrays['Th'][i:i + 1]}, allow_pickle=True)
        params = zju.world_parameters(zju.load_fit(path), model)
        fit = {k: np.float64(v[0] if k == 'shapes' else v[i]) for k, v in arrays.items()}
        local = forward_kinematics(toy, PARENTS['smpl'], fit['poses'], fit['shapes'], np.zeros(3))
        expected = local @ cv2.Rodrigues(fit['Rh'])[0].T + fit['Th']
        assert np.abs(parameter_joints_mm(params, model) - expected * 1000).max() < 1e-3
        # root rotation = Rodrigues(Rh) (poses[:3] is zero), trans != Th (the pelvis offset)
        np.testing.assert_allclose(cv2.Rodrigues(np.float64(params['pose'][:3]))[0], cv2.Rodrigues(fit['Rh'])[0],
                                   atol=1e-6)
