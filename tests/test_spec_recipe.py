import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.spec import main as spec
from tests.fakes import spec as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _env(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1',
               PATH=f'{REPO / ".venv" / "bin"}{os.pathsep}{os.environ.get("PATH", "")}')
    env.pop('POSEPILE_CACHE_DIR', None)
    env.pop('POSEPILE_DETECTOR', None)
    return env


def test_spec_recipe_on_fake_release(data_root):
    truth = fake.write_fake_release(data_root)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/spec/main.sh')], cwd=REPO, env=_env(data_root),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'spec.posepile')
    assert dataset.joint_info.n_joints == 24
    kept = {0: [p for p in truth['train'] if p['kept']], 2: [p for p in truth['test'] if p['kept']]}
    assert (len(kept[0]), len(kept[2])) == (3, 1)  # one person of 62 x 47 px dropped (side < 100)
    assert len(dataset.examples[0]) == 3 and len(dataset.examples[1]) == 0 and len(dataset.examples[2]) == 1
    errors = []
    for split in (0, 2):
        by_row = {p['row']: p for p in kept[split]}
        for example in dataset.examples[split]:
            person = by_row[int(Path(example.image_path).stem.split('_')[-1])]
            assert f'/{Path(person["imgname"]).stem.split("_")[3]}/' in example.image_path  # grouped
            distances = np.linalg.norm(example.camera.world_to_camera(example.world_coords), axis=1)
            np.testing.assert_allclose(distances, np.linalg.norm(person['cam_mm'], axis=1), rtol=1e-5)
            projected = example.camera.world_to_image(example.world_coords)
            scale = example.camera.intrinsic_matrix[0, 0] / person['cam_int'][0, 0]
            errors += dot_errors(data_root / example.image_path, projected,
                                 max(3, int(round(3 * fake.DOT_SIGMA_PX * scale))))
    assert len(errors) > 30
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
    _check_parameters(data_root, dataset, truth)
    # before cropping: the shipped camera, joints exactly where PnP + RMS scaling put them, box = joints x1.15
    tasks = {key: example for key, example, _ in spec.make_crop_tasks(data_root)}
    assert sorted(tasks) == ['0/0000000', '0/0000001', '0/0000003', '2/0000000']
    for key, example in tasks.items():
        person = next(p for p in truth['train' if key[0] == '0' else 'test'] if p['row'] == int(key[2:]))
        np.testing.assert_allclose(example.camera.world_to_camera(example.world_coords), person['cam_mm'],
                                   atol=0.05)  # mm (float32 storage)
        np.testing.assert_allclose(example.camera.R, person['cam_rotmat'], atol=1e-12)
        np.testing.assert_allclose(example.bbox, person['box'], atol=0.01)


def _check_parameters(data_root, dataset, truth):
    """The stored scaled SMPL fit, in the world frame, reproduces each example's world joints:
    X = s * J(pose, shape, trans); rototranslated into its crop camera or any other, those joints seen by that
    camera (< 0.1 mm)."""
    from posepile import bodymodels
    from tests.toy_bodymodels import other_camera, roundtrip_errors_mm
    model = bodymodels.load('smpl', 'neutral', data_root / 'body_models' / 'smpl')
    scales = {p['row']: p for p in truth['train'] + truth['test']}
    worst, errors = 0.0, []
    for split in (0, 2):
        for example in dataset.examples[split]:
            params = example.parameters
            assert params['type'] == 'smpl' and params['gender'] == 'neutral'
            assert np.shape(params['pose']) == (72,) and np.shape(params['shape']) == (10,)
            joints = model(np.asarray(params['pose'])[None], np.asarray(params['shape'])[None],
                           np.asarray(params['trans'])[None], return_vertices=False)['joints'][0]
            worst = max(worst, np.abs(params['scale'] * joints * 1000 - example.world_coords).max())
            errors += roundtrip_errors_mm(params, example.world_coords, [example.camera, other_camera(len(errors))],
                                          model)
            person = scales[int(Path(example.image_path).stem.split('_')[-1])]
            assert 0.5 < params['scale'] < 2 and person['kept']
    print(f'spec parameters: max deviation {worst:.2e} mm, round trip {max(errors):.2e} mm')
    assert worst < 0.1, worst  # mm
    assert len(errors) == 2 * (len(dataset.examples[0]) + len(dataset.examples[2])) and max(errors) < 0.1, errors


def test_parameters_roundtrip_pose_and_shape(data_root):
    """Before cropping (the shipped camera): the non-root pose and the betas are those of the annotations, the
    root turned by the PnP rotation, the scale the RMS ratio of the fake (SCENES); in the shipped camera's frame the
    fit gives the placed camera-frame joints."""
    truth = fake.write_fake_release(data_root, images=False)
    arrays = spec.load_annotations(data_root / 'spec' / 'spec-syn' / 'annotations' / 'train.npz')
    tasks = {key: example for key, example, _ in spec.make_crop_tasks(data_root)}
    from posepile import bodymodels
    model = bodymodels.load('smpl', 'neutral', data_root / 'body_models' / 'smpl')
    example = tasks['0/0000000']
    cam_params = bodymodels.rototranslate(example.parameters, example.camera.R, example.camera.t / 1000, model=model)
    np.testing.assert_allclose(cam_params['pose'][3:], arrays['pose'][0][3:], atol=1e-6)
    np.testing.assert_allclose(cam_params['shape'], arrays['shape'][0], atol=1e-6)
    assert np.isclose(cam_params['scale'], fake.SCENES['train'][0][1][0][2])
    joints = model(np.asarray(cam_params['pose'])[None], np.asarray(cam_params['shape'])[None],
                   np.asarray(cam_params['trans'])[None], return_vertices=False)['joints'][0]
    np.testing.assert_allclose(cam_params['scale'] * joints * 1000, truth['train'][0]['cam_mm'], atol=0.05)


def test_pnp_placement_is_exact_and_uses_the_lsp_rows_of_s(data_root):
    truth = fake.write_fake_release(data_root, images=False)
    from posepile import bodymodels
    model = bodymodels.load('smpl', 'neutral', data_root / 'body_models' / 'smpl')
    arrays = spec.load_annotations(data_root / 'spec' / 'spec-syn' / 'annotations' / 'train.npz')
    joints = spec.smpl_joints_mm(arrays, model)
    for row in (0, 1):  # row 1 has two OpenPose joints with confidence 0 (PnP on 12 points)
        placed, rms = spec.place_person(joints[row], arrays['openpose_gt'][row], arrays['cam_int'][row],
                                        arrays['S'][row])
        assert rms < 1e-6
        np.testing.assert_allclose(placed, truth['train'][row]['cam_mm'], atol=1e-6)
    # scaling by all 24 rows of S (not only the 12 LSP rows named by the original) would be off
    all_rows = spec.rms_spread(arrays['S'][0, :, :3] * 1000) / spec.rms_spread(joints[0][[8, 5, 2, 1, 4, 7, 21, 19,
                                                                                           17, 16, 18, 20]])
    lsp_rows = spec.rms_spread(arrays['S'][0, :12, :3] * 1000) / spec.rms_spread(
        joints[0][[8, 5, 2, 1, 4, 7, 21, 19, 17, 16, 18, 20]])
    assert abs(all_rows / lsp_rows - 1) > 0.01 and np.isclose(lsp_rows, fake.SCENES['train'][0][1][0][2])


def test_detection_association():
    camera_rot, intrinsics = np.eye(3), np.array([[1000.0, 0, 960], [0, 1000, 540], [0, 0, 1]])
    people = []
    for x in (0.0, 1500.0):
        cam_mm = np.array([[x - 500, -800, 5000], [x + 500, 800, 5000]] * 12, np.float64)  # 200 x 320 px boxes
        people.append(dict(row=len(people), cam_mm=cam_mm, cam_rotmat=camera_rot, cam_int=intrinsics))
    assert len(spec.person_examples('a/b.png', people)) == 2  # no detector: joint boxes x1.15
    box0 = spec.person_examples('a/b.png', people)[0][1].bbox
    detections = np.array([[*(box0 + [20, 10, 0, 0]), 0.9], [0, 0, 50, 50, 0.8]], np.float32)
    kept = spec.person_examples('a/b.png', people, detections)
    assert [p['row'] for p, _ in kept] == [0]  # person 1 has no detection at IoU >= 0.3: dropped
    np.testing.assert_allclose(kept[0][1].bbox, detections[0, :4])


def test_malformed_annotations_name_the_file(data_root):
    fake.write_fake_release(data_root, images=False)
    path = data_root / 'spec' / 'spec-syn' / 'annotations' / 'test.npz'
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays['S'] = arrays['S'][:, :8]
    np.savez(path, **arrays)
    with pytest.raises(spec.SpecFormatError, match=r'test\.npz: S has shape \(1, 8, 4\)'):
        spec.load_annotations(path)
    result = subprocess.run([sys.executable, '-m', 'posepile.ds.spec.main', 'prepare'], cwd=REPO,
                            env=_env(data_root), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and 'test.npz: S has shape' in result.stderr.strip().splitlines()[-1]
    (data_root / 'body_models' / 'smpl' / 'SMPL_NEUTRAL.pkl').unlink()
    result = subprocess.run([sys.executable, '-m', 'posepile.ds.spec.main', 'prepare'], cwd=REPO,
                            env=_env(data_root), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and 'SMPL_NEUTRAL.pkl' in result.stderr.strip().splitlines()[-1]
