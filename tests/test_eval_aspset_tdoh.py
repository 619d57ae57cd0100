import numpy as np
import pytest

from posepile.ds.aspset import eval as aspset_eval
from posepile.ds.aspset import main as aspset
from posepile.ds.tdoh import eval as tdoh_eval
from posepile.ds.tdoh import main as tdoh
from posepile.eval.predictions import PredictionError, save_predictions
from tests.fakes import aspset as fake_aspset
from tests.fakes import tdoh as fake_tdoh


def test_aspset_eval_three_variants(data_root, tmp_path):
    written = fake_aspset.write_fake_release(data_root / 'aspset')
    root = data_root / 'aspset'
    paths, coords, offsets, gts = [], [], [], []
    # test split: clip 0026 on 3 cameras, clip 0031 on 'mid'; 23 frames at step 5 -> frames 0, 5, ..., 20
    for (subject, clip), mocap in written.items():
        split = 'test' if clip != '0002' else 'train'
        if split != 'test':
            continue
        cameras = aspset.CAMERA_NAMES if clip == '0026' else ('mid',)
        for cam_name in cameras:
            camera = aspset.load_camera(root / 'test' / 'cameras' / subject / f'{subject}-{cam_name}.json')
            for i in range(0, len(mocap), 5):
                pose = camera.world_to_camera(mocap[i])
                gts.append(pose.copy())
                pose[3] += [0, 0, 140.0 if i % 10 == 0 else 160.0]  # right wrist, on either side of 150
                pose += [25.0, 0, 0]  # an absolute offset that root-relative removes
                paths.append(aspset.frame_relpath('test', subject, clip, cam_name, i))
                coords.append(pose)
                offsets.append(140.0 if i % 10 == 0 else 160.0)
    save_predictions(tmp_path / 'p.npz', paths, np.stack(coords), key='coords3d_pred_cam')
    results = aspset_eval.main(['--pred-path', str(tmp_path / 'p.npz')])
    offsets = np.array(offsets)
    assert results['n_frames'] == 4 * 5
    wrist_abs = np.sqrt(offsets ** 2 + 25 ** 2)
    assert results['absolute']['mpjpe'] == pytest.approx((16 * 25 + wrist_abs).mean() / 17, abs=1e-3)
    assert results['root_relative']['mpjpe'] == pytest.approx(offsets.mean() / 17, abs=1e-3)
    assert results['root_relative']['pck150'] == pytest.approx(100 * (16 + np.mean(offsets <= 150)) / 17, abs=1e-6)
    assert results['absolute']['pck150'] == pytest.approx(100 * (16 + np.mean(wrist_abs <= 150)) / 17, abs=1e-6)
    # PA can exceed the root-relative error here: least squares spreads one large error over all joints
    from tests.test_eval_h36m import _pa_error_reference
    expected_pa = np.mean([_pa_error_reference(p - p[16], g - g[16]) for p, g in zip(coords, gts)])
    assert results['procrustes']['mpjpe'] == pytest.approx(expected_pa, abs=1e-4)
    # the same predictions in world coordinates give the same numbers
    world = []
    for path, pose in zip(paths, coords):
        subject, rest = path.split('/')[3], path.split('/')[4]
        camera = aspset.load_camera(root / 'test' / 'cameras' / subject / f'{subject}-{rest.split("-")[-1]}.json')
        world.append(camera.camera_to_world(pose))
    save_predictions(tmp_path / 'w.npz', paths, np.stack(world), key='coords3d_pred_world')
    again = aspset_eval.main(['--pred-path', str(tmp_path / 'w.npz')])
    assert again['root_relative']['mpjpe'] == pytest.approx(results['root_relative']['mpjpe'], abs=1e-3)


def test_aspset_c3d_errors_name_the_file(tmp_path):
    (tmp_path / 'x.c3d').write_bytes(b'\x00' * 100)
    with pytest.raises(aspset.ASPsetFormatError, match='x.c3d'):
        aspset.load_mocap(tmp_path / 'x.c3d')


def test_tdoh_eval_unit_quirk_and_hip_root(data_root, tmp_path):
    truth = fake_tdoh.write_fake_release(data_root / 'tdoh')
    paths, coords = [], []
    for image_id, joints in truth.items():
        pose = joints.copy()
        pose[13] += [0, 70.0, 0]  # head off by 70 mm
        pose += [10.0, 20.0, 30.0]
        paths.append(tdoh.image_relpath('testset', image_id))
        coords.append(pose)
    save_predictions(tmp_path / 'p.npz', paths, np.stack(coords), key='coords3d_pred_cam')
    results = tdoh_eval.main(['--pred-path', str(tmp_path / 'p.npz')])
    assert results['mpjpe_mm'] == pytest.approx(70 / 14, abs=1e-3)
    from tests.test_eval_h36m import _pa_error_reference
    expected_pa = np.mean([_pa_error_reference(tdoh_eval.hip_centred(p), tdoh_eval.hip_centred(g))
                           for p, g in zip(coords, truth.values())])
    assert results['pa_mpjpe_mm'] == pytest.approx(expected_pa, abs=1e-4)
    # a prediction file in metres (as lsp_joints_3d would be without the 1000/7) is refused
    save_predictions(tmp_path / 'm.npz', paths, np.stack(coords) / 1000, key='coords3d_pred_cam')
    with pytest.raises(PredictionError, match='millimetres'):
        tdoh_eval.main(['--pred-path', str(tmp_path / 'm.npz')])
