import os
import subprocess
from pathlib import Path

import numpy as np

from posepile.ds.tdpw import main as tdpw
from posepile.util.sampling import select_frames
from tests.markers import dot_errors
from tests.fakes import tdpw as fake

REPO = Path(__file__).resolve().parent.parent


def test_tdpw_recipe_on_fake_release(data_root):
    smpl_dir = data_root / 'body_models' / 'smpl'
    fake.write_smpl_models(smpl_dir, identity_regressor=True, n_vertices=30)
    written = fake.write_fake_release(data_root / 'tdpw', n_frames=12, smpl_dir=smpl_dir)
    fake.write_images(data_root / 'tdpw', written)
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/tdpw/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'tdpw.posepile')
    expected = {0: 0, 1: 0, 2: 0}
    for (split, _), data in written.items():
        for actor in range(len(data['jointPositions'])):
            valid = np.flatnonzero(tdpw.valid_frames(data, actor))
            if split == 'train':
                joints = np.asarray(data['jointPositions'][actor]).reshape(-1, 24, 3)[valid] * 1000
                expected[0] += len(select_frames(joints, 100))
            else:
                expected[tdpw.SPLIT_IDS[split]] += len(valid)
    assert {s: len(v) for s, v in dataset.examples.items()} == expected
    # the gendered SMPL fit in each example's (crop) camera frame: its joints are the world joints (here the same
    # toy models' joints of the fit, as jointPositions) seen by that camera, < 0.1 mm
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    models = {g: bodymodels.load('smpl', g, data_root / 'body_models') for g in ('female', 'male')}
    by_track = {(data['sequence'], a): data for data in written.values() for a in range(len(data['genders']))}
    param_errors = []
    for example in [ex for examples in dataset.examples.values() for ex in examples]:
        sequence, name = example.image_path.split('/')[-2:]
        frame, actor = (int(x) for x in name[len('image_'):-len('.jpg')].split('_'))
        data = by_track[(sequence, actor)]
        params = example.parameters
        assert params['type'] == 'smpl' and params['gender'] == {'f': 'female', 'm': 'male'}[data['genders'][actor]]
        np.testing.assert_allclose(params['shape'], data['betas'][actor], atol=1e-6)
        np.testing.assert_allclose(params['pose'][3:], data['poses'][actor][frame][3:], atol=1e-6)
        camera_joints = parameter_joints_mm(params, models[params['gender']])
        param_errors.append(np.abs(camera_joints - example.camera.world_to_camera(example.world_coords)).max())
    assert len(param_errors) == sum(expected.values()) and max(param_errors) < 0.1, max(param_errors)
    errors = []
    for example in list(dataset.examples[0])[:5] + list(dataset.examples[2])[:5]:
        assert 1000 < np.median(example.camera.world_to_camera(example.world_coords)[:, 2]) < 10000  # mm
        projected = example.camera.world_to_image(example.world_coords)
        errors += dot_errors(data_root / example.image_path, projected,
                             max(4, int(round(6 * example.camera.intrinsic_matrix[0, 0] / 1961))), separation=3)
    assert len(errors) > 20
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_without_smpl_models_the_parameters_are_left_out(data_root, caplog):
    written = fake.write_fake_release(data_root / 'tdpw', n_frames=6)
    fake.write_images(data_root / 'tdpw', written)
    tasks, _ = tdpw.make_crop_tasks(data_root)
    examples = [example for _, example, _ in tasks]
    assert all(ex.parameters['type'] == 'smpl' and ex.parameters['pose'].shape == (72,) for ex in examples)
    tdpw.to_camera_frame(examples, data_root)
    assert all(ex.parameters is None for ex in examples)
    assert 'no SMPL parameters' in caplog.text and 'body_models' in caplog.text
