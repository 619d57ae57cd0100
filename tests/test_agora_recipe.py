import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posepile.ds.agora import main as agora
from posepile.ds.agora.pandas_pickle import PandasPickleError, load_table
from tests.fakes import agora as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _run_recipe(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1',
               PATH=f'{REPO / ".venv" / "bin"}{os.pathsep}{os.environ.get("PATH", "")}')
    env.pop('POSEPILE_CACHE_DIR', None)
    env.pop('POSEPILE_DETECTOR', None)
    return subprocess.run(['bash', str(REPO / 'posepile/ds/agora/main.sh')], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_agora_recipe_on_fake_release(data_root):
    truth = fake.write_fake_release(data_root / 'agora')  # train_0: pandas 1.2 layout, validation_0: >= 1.3
    result = _run_recipe(data_root)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'agora.posepile')
    assert dataset.joint_info.n_joints == 66
    assert dataset.joint_info.names[24] == 'pelv_smplx' and dataset.joint_info.names[-1] == 'rmiddle_smplx'
    kept = {split: [p for p in truth[section] if p['kept']] for split, section in ((0, 'train_0'),
                                                                                   (1, 'validation_0'))}
    assert len(kept[0]) == 3 and len(kept[1]) == 2  # invalid, 80 % occluded and an 80 px wide person dropped
    assert len(dataset.examples[0]) == len(kept[0]) and len(dataset.examples[1]) == len(kept[1])
    errors = []
    for split in (0, 1):
        by_crop = {f'{Path(p["image"]).stem}_{p["i_person"]}': p for p in kept[split]}
        for example in dataset.examples[split]:
            person = by_crop[Path(example.image_path).stem]
            # the crop camera keeps the optical centre: joint distances to it are the camera-frame norms (mm)
            distances = np.linalg.norm(example.camera.world_to_camera(example.world_coords), axis=1)
            np.testing.assert_allclose(distances, np.linalg.norm(person['cam_mm'], axis=1), rtol=1e-6)
            assert 3000 < np.median(distances) < 20000  # mm, not m
            projected = example.camera.world_to_image(example.world_coords)
            scale = example.camera.intrinsic_matrix[0, 0] / _focal_px(person['image'])
            radius = max(3, int(round(3 * fake.DOT_SIGMA_PX * scale)))
            errors += dot_errors(data_root / example.image_path, projected, radius)
    print(f'agora dots: {len(errors)} measured, median {np.median(errors):.3f} px, max {np.max(errors):.3f} px')
    assert 'differ from the table joints' not in result.stderr  # the fits' model joints match the tables
    assert len(errors) > 100
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
    _check_parameters(data_root, dataset, kept)
    # the boxes before cropping are the modal-mask boxes (person 1 of image 1 is half hidden by person 0)
    tasks = {key: example for key, example, _ in agora.make_crop_tasks(data_root)}
    assert len(tasks) == 5
    np.testing.assert_array_equal(tasks['0/train_0/000000/01'].bbox, [1300, 600, 600, 1200])
    np.testing.assert_array_equal(tasks['1/validation_0/000000/01'].bbox, kept[1][1]['box'])
    assert tasks['0/train_0/000000/00'].mask['size'] == [2160, 3840]


def _check_parameters(data_root, dataset, kept):
    """The stored world-frame SMPL-X parameters give the example's SMPL-X skeleton joints (its world joints), and
    rototranslated into its crop camera or any other camera, those joints seen by that camera, < 0.1 mm; the
    non-root pose is the fit's with the hand means added."""
    from posepile import bodymodels
    from tests.toy_bodymodels import other_camera
    worst, n_checked = 0.0, 0
    for split in (0, 1):
        by_crop = {f'{Path(p["image"]).stem}_{p["i_person"]}': p for p in kept[split]}
        for example in dataset.examples[split]:
            person = by_crop[Path(example.image_path).stem]
            params = example.parameters
            assert params['type'] == 'smplx' and params['gender'] == person['gender'] and 'kid_factor' not in params
            fit, means = person['fit'], person['hand_means']
            np.testing.assert_allclose(params['pose'][3:75], np.concatenate(
                [fit['body_pose'], fit['jaw_pose'], fit['leye_pose'], fit['reye_pose']]), atol=1e-6)
            np.testing.assert_allclose(params['pose'][75:], np.concatenate(
                [fit['left_hand_pose'] + means[0], fit['right_hand_pose'] + means[1]]), atol=1e-6)
            np.testing.assert_allclose(params['shape'], fit['betas'], atol=1e-6)
            np.testing.assert_allclose(params['expression'], fit['expression'], atol=1e-6)
            model = bodymodels.load('smplx', params['gender'], data_root / 'body_models')
            world_mm = example.world_coords[24:24 + len(fake.SMPLX_SKELETON)]
            for camera in (None, example.camera, other_camera(n_checked)):
                moved = params if camera is None else bodymodels.rototranslate(params, camera.R, camera.t / 1000,
                                                                                model=model)
                joints = model(np.asarray(moved['pose'])[None], np.asarray(moved['shape'])[None],
                               np.asarray(moved['trans'])[None], expression=np.asarray(moved['expression'])[None],
                               return_vertices=False)['joints'][0]
                from_params_mm = joints[list(fake.SMPLX_SKELETON)] * 1000
                expected_mm = world_mm if camera is None else camera.world_to_camera(world_mm)
                worst = max(worst, np.abs(from_params_mm - expected_mm).max())
            n_checked += 1
    print(f'agora parameters: max deviation {worst:.2e} mm over {n_checked} examples x 3 frames')
    assert n_checked == len(dataset.examples[0]) + len(dataset.examples[1]) > 0
    assert worst < 0.1, worst  # mm


def _focal_px(image_name):
    return (18 if 'cam0' in image_name else 50 if 'hdri' in image_name else 28) / 36 * 3840


def test_camera_conventions():
    cam00 = agora.get_camera([1, 2, 3], 77, 'ag_trainset_renderpeople_bfh_archviz_5_10_cam00_00001.png')
    np.testing.assert_allclose(cam00.intrinsic_matrix, [[1920, 0, 1920], [0, 1920, 1080], [0, 0, 1]])
    np.testing.assert_allclose(cam00.t, [-2750, -2650, 4000])  # Unreal (400, -275, 265) cm -> (y, -z, x) mm
    np.testing.assert_allclose(cam00.R, Rotation.from_euler('yxz', [np.deg2rad(-135), np.deg2rad(30), 0]).as_matrix(),
                               atol=1e-12)
    for rig in ('cam00', 'cam01', 'cam02', 'cam03'):
        camera = agora.get_camera([0, 0, 0], 0, f'ag_trainset_x_5_10_{rig}_00001.png')
        forward = camera.R[2]  # the optical axis in world coordinates (y down)
        assert np.isclose(np.rad2deg(np.arcsin(forward[1])), 30)  # pitched 30 deg down
        horizontal, to_origin = forward[[0, 2]], -camera.t[[0, 2]]
        cos = horizontal @ to_origin / np.linalg.norm(horizontal) / np.linalg.norm(to_origin)
        assert np.rad2deg(np.arccos(cos)) < 30, rig  # the fixed rigs face the middle of the scene
    hdri = agora.get_camera([500, 500, 500], 90, 'ag_trainset_3dpeople_bfh_hdri_50mm_5_15_00002.png')
    assert np.isclose(hdri.intrinsic_matrix[0, 0], 50 / 36 * 3840)
    np.testing.assert_allclose(hdri.t, [0, -1700, 0])
    np.testing.assert_allclose(hdri.R, np.eye(3), atol=1e-12)
    other = agora.get_camera([350, -120, 160], 30, 'ag_validationset_renderpeople_bfh_flowers_5_15_00003.png')
    assert np.isclose(other.intrinsic_matrix[0, 0], 28 / 36 * 3840)
    np.testing.assert_allclose(other.t, [-1200, -1600 - 1700, 3500])  # table location, ground offset -1.7 m
    np.testing.assert_allclose(other.R, Rotation.from_euler('y', -30, degrees=True).as_matrix(), atol=1e-12)
    assert agora.mask_relpath('ag_trainset_3dpeople_bfh_hdri_50mm_5_15_00002.png', 3) == \
        'train/ag_trainset_3dpeople_bfh_hdri/ag_trainset_3dpeople_bfh_hdri_50mm_5_15_mask_000002_00003.png'


def test_detection_association():
    image = dict(people=[dict(i_person=0, occlusion=10.0, box=np.array([0, 0, 200, 400.])),
                         dict(i_person=1, occlusion=60.0, box=np.array([1000, 0, 200, 400.])),
                         dict(i_person=2, occlusion=20.0, box=np.array([2000, 0, 200, 400.])),
                         dict(i_person=3, occlusion=0.0, box=np.array([3000, 0, 90, 400.]))])
    assert set(agora.final_boxes(image)) == {0, 1, 2}  # without a detector: mask boxes, side >= 100 px
    detections = np.array([[10, 10, 200, 400, 0.9],  # IoU ~0.9 with person 0
                           [1150, 0, 200, 400, 0.9],  # IoU 0.14 with person 1: not matched
                           [3000, 0, 120, 400, 0.9]], np.float32)  # matched to person 3: 120 px wide
    boxes = agora.final_boxes(image, detections)
    assert set(boxes) == {0, 2, 3}  # 1 is unmatched and > 50 % occluded; 2 unmatched keeps its mask box
    np.testing.assert_array_equal(boxes[0], [10, 10, 200, 400])
    np.testing.assert_array_equal(boxes[2], [2000, 0, 200, 400])


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo hacked',))


def test_restricted_unpickler_refuses_code(tmp_path):
    path = tmp_path / 'train_0_withjv.pkl'
    path.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(PandasPickleError) as info:
        load_table(path)
    assert str(path) in str(info.value) and 'system' in str(info.value) and '\n' not in str(info.value)


def test_malformed_table_names_the_file(data_root):
    root = data_root / 'agora'
    fake.write_fake_release(root, images=False)
    columns = load_table(root / 'SMPLX' / 'train_0_withjv.pkl')
    columns['gt_joints_3d'][1][2] = np.zeros((55, 3))  # SMPL-X joints cut to 55: index 73 is missing
    fake.write_dataframe_pickle(root / 'SMPLX' / 'train_0_withjv.pkl', dict(columns))
    with pytest.raises(agora.AgoraFormatError, match=r'train_0_withjv\.pkl: row 1 .* person 2 gt_joints_3d has shape'):
        agora.load_section(root, 'train_0')
    (root / 'SMPL' / 'validation_0_withjv.pkl').write_bytes(b'\x80\x04\x95garbage')
    env = dict(os.environ, DATA_ROOT=str(data_root))
    result = subprocess.run([sys.executable, '-m', 'posepile.ds.agora.main', 'prepare'], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert 'train_0_withjv.pkl' in last or 'validation_0_withjv.pkl' in last, result.stderr[-2000:]


def test_fit_frames_match_the_tables_and_catch_convention_errors(data_root, monkeypatch):
    """Prepared world-frame parameters reproduce the tables' SMPL-X skeleton joints (model check ~0 mm); a yaw off
    by one degree would be reported (the pelvis-based translation alone cannot hide a wrong rotation)."""
    from posepile.ds.agora import fits
    fake.write_fake_release(data_root / 'agora', images=False)
    prepared = agora.prepare_stage(data_root=data_root)
    deviations = [p['model_deviation_mm'] for images in prepared.values() for image in images
                  for p in image['people']]
    assert len(deviations) == 6 and max(deviations) < 1e-3, deviations  # valid, <= 75 % occluded
    original = fits.fit_to_world
    monkeypatch.setattr(fits, 'fit_to_world', lambda yaw, location: original(yaw + 1, location))
    images = agora.prepare_section(data_root / 'agora', 'train_0', agora.load_colors(data_root / 'agora' /
                                                                                      'seg_rgbs.txt'), n_workers=0)
    assert min(p['model_deviation_mm'] for image in images for p in image['people']) > 1


def test_fit_reader(tmp_path):
    from posepile.ds.agora import fits
    rng = np.random.default_rng(1)
    fit = {key: rng.normal(0, 0.3, size) for key, size in fits.POSE_PARTS}
    fit.update(betas=rng.normal(0, 1, 11), expression=rng.normal(0, 1, 10), transl=rng.normal(0, 1, 3))
    path = tmp_path / 'smplx_gt' / 'kid' / 'kid.pkl'
    fake.write_fit(path, fit)  # with a torch-tensor entry that is never rebuilt
    loaded = fits.load_smplx_fit(fits.fit_path(tmp_path, 'smplx_gt/kid/kid.obj'), is_kid=True)
    np.testing.assert_allclose(loaded['betas'], fit['betas'][:10], rtol=1e-6)
    assert np.isclose(loaded['kid_factor'], fit['betas'][10], rtol=1e-6) and loaded['pose'].shape == (165,)
    assert fits.parameter_gender('female', True) == 'neutral' and fits.parameter_gender('male', True) == 'male'
    params = fits.world_parameters(loaded, 'female', True, 30.0, [100.0, 200.0, 0.0], np.array([1.0, 0.5, 2.0]),
                                   (np.zeros(45), np.zeros(45)))
    assert params['gender'] == 'neutral' and np.isclose(params['kid_factor'], fit['betas'][10], rtol=1e-6)
    # the posed pelvis (J0 + trans) is where the table put it, so J0 = pelvis - trans is the kid's rest pelvis
    rotation, offset = fits.fit_to_world(30.0, [100.0, 200.0, 0.0])
    rest_pelvis = rotation.T @ (np.array([1.0, 0.5, 2.0]) - offset) - loaded['transl']
    np.testing.assert_allclose(np.array([1.0, 0.5, 2.0]) - params['trans'], rest_pelvis, atol=1e-6)
    fake.write_fit(path, {**fit, 'body_pose': fit['body_pose'][:60]})
    with pytest.raises(agora.AgoraFormatError, match=r'kid\.pkl: body_pose has 60 values, expected 63'):
        fits.load_smplx_fit(path, is_kid=True)
    path.write_bytes(pickle.dumps({'global_orient': _Evil()}))
    with pytest.raises(agora.AgoraFormatError, match=r'kid\.pkl: .*refusing the global (posix|nt|os)\.system'):
        fits.load_smplx_fit(path, is_kid=True)
    with pytest.raises(agora.AgoraFormatError, match=r'missing\.pkl: fit file missing'):
        fits.load_smplx_fit(tmp_path / 'missing.pkl', is_kid=False)
