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
            assert 5000 < np.median(distances) < 15000  # mm, not m
            projected = example.camera.world_to_image(example.world_coords)
            scale = example.camera.intrinsic_matrix[0, 0] / _focal_px(person['image'])
            radius = max(3, int(round(3 * fake.DOT_SIGMA_PX * scale)))
            errors += dot_errors(data_root / example.image_path, projected, radius)
    assert len(errors) > 100
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
    # the boxes before cropping are the modal-mask boxes (person 1 of image 1 is half hidden by person 0)
    tasks = {key: example for key, example, _ in agora.make_crop_tasks(data_root)}
    assert len(tasks) == 5
    np.testing.assert_array_equal(tasks['0/train_0/000000/01'].bbox, [1300, 600, 600, 1200])
    np.testing.assert_array_equal(tasks['1/validation_0/000000/01'].bbox, kept[1][1]['box'])
    assert tasks['0/train_0/000000/00'].mask['size'] == [2160, 3840]


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
