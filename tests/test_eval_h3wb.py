"""H3WB leaderboard metrics: GT JSON files in the release's layout built from the real H3WB sample (133 keypoints,
camera frame, mm) with planted errors whose MPJPE variants are known by hand."""
import json

import numpy as np
import pytest

from posepile.ds.h3wb import eval as h3wb_eval
from posepile.eval.predictions import PredictionError
from tests.conftest import realdata_file

pytestmark = pytest.mark.realdata


@pytest.fixture(scope='module')
def sample_mm(realdata):
    path = realdata_file(realdata, 'h3wb/_derived_mmpose_test_fixture/h3wb_train_sub.npz')
    with np.load(path, allow_pickle=True) as data:  # a trusted test fixture (pickled dicts, mmpose's format)
        entry = data['train_data'].item()['S1']['Directions']
        camera = data['metadata'].item()['S1']['60457274']
    camera_3d = np.asarray(entry['60457274']['camera_3d'], np.float64)[0]
    world = np.asarray(entry['global_3d'], np.float64)
    R, T = np.asarray(camera['R'])[0], np.asarray(camera['T']).reshape(3)
    # REFERENCE-nlf-era: camera_3d = R global_3d + 1000 T (T in metres) to < 0.001 mm
    np.testing.assert_allclose(world @ R.T + 1000 * T, camera_3d, atol=1e-3)
    assert camera_3d.shape == (133, 3)
    return camera_3d


def _to_json(poses, ids):
    return {str(i): {'keypoints_3d': {str(j): dict(zip('xyz', map(float, p))) for j, p in enumerate(pose)}}
            for i, pose in zip(ids, poses)}


def _write(path, poses, ids):
    path.write_text(json.dumps(_to_json(poses, ids)))


def test_sample_ids_follow_the_leaderboard():
    assert h3wb_eval.sample_ids('2d', 9) == [0, 1, 2, 3, 8, 9, 10, 11, 16]
    assert h3wb_eval.sample_ids('i2d', 5) == [4, 5, 6, 7, 12]
    assert h3wb_eval.sample_ids('rgb', 3) == [0, 1, 2]
    assert h3wb_eval.sample_ids('2d', 23, cv=2) == [4, 5, 6, 7]


def test_identity_translation_and_planted_errors(sample_mm, tmp_path):
    ids = h3wb_eval.sample_ids('2d', 8)
    gt = np.stack([sample_mm + [10.0 * k, 0, 0] for k in range(8)])
    _write(tmp_path / '2Dto3D_test_3d.json', gt, ids)
    got_ids, got = h3wb_eval.ground_truth(tmp_path, '2d')
    assert got_ids == ids
    np.testing.assert_allclose(got, gt)
    shifted = gt + [100.0, -50, 2000]
    r = h3wb_eval.evaluate(shifted, gt)
    assert all(v == pytest.approx(0, abs=1e-9) for k, v in r.items() if k.startswith('MPJPE'))
    # planted: every face keypoint +6 mm in z; every left-hand keypoint except its root +4 mm in y
    pred = gt.copy()
    pred[:, 23:91, 2] += 6
    pred[:, 92:112, 1] += 4
    r = h3wb_eval.evaluate(pred, gt)
    assert r['MPJPE face (pelvis-aligned)'] == pytest.approx(6)
    assert r['MPJPE face (nose-aligned)'] == pytest.approx(6)  # the nose (keypoint 0) did not move
    assert r['MPJPE body (pelvis-aligned)'] == pytest.approx(0)
    assert r['MPJPE all (pelvis-aligned)'] == pytest.approx((68 * 6 + 20 * 4) / 133)
    assert r['MPJPE hands (pelvis-aligned)'] == pytest.approx(20 * 4 / 42)
    assert r['MPJPE hands (wrist-aligned)'] == pytest.approx((20 * 4 / 21 + 0) / 2)
    # moving the pelvis (hips 11, 12) by 10 mm shifts every other keypoint's aligned error by 10 mm
    pred = gt.copy()
    pred[:, [11, 12], 0] += 10
    r = h3wb_eval.evaluate(pred, gt)
    assert r['MPJPE all (pelvis-aligned)'] == pytest.approx(131 * 10 / 133)
    assert r['MPJPE face (nose-aligned)'] == pytest.approx(0)


def test_cli_json_and_npz_predictions(sample_mm, tmp_path, capsys):
    ids = h3wb_eval.sample_ids('i2d', 4)
    gt = np.stack([sample_mm] * 4)
    _write(tmp_path / 'I2Dto3D_test_3d.json', gt, ids)
    pred = gt.copy()
    pred[:, 0] += [0, 0, 13.3]  # the nose: body error 13.3 / 23, and the face's nose-aligned error 13.3
    _write(tmp_path / 'pred_I2D.json', pred, ids)
    r = h3wb_eval.main(['--pred-path', str(tmp_path / 'pred_I2D.json'), '--task', 'i2d', '--json-dir', str(tmp_path)])
    assert 'H3WB task i2d, test set: 4 samples' in capsys.readouterr().out
    assert r['MPJPE body (pelvis-aligned)'] == pytest.approx(13.3 / 23)
    assert r['MPJPE face (nose-aligned)'] == pytest.approx(13.3)
    np.savez(tmp_path / 'p.npz', sample_id=np.array(ids[::-1]), coords3d_pred_cam=pred[::-1])
    r2 = h3wb_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--task', 'i2d', '--json-dir', str(tmp_path)])
    assert r2 == r
    np.savez(tmp_path / 'short.npz', sample_id=np.array(ids[:3]), coords3d_pred_cam=pred[:3])
    with pytest.raises(PredictionError, match=r'short.npz: 1 of 4 benchmark images have no prediction'):
        h3wb_eval.main(['--pred-path', str(tmp_path / 'short.npz'), '--task', 'i2d', '--json-dir', str(tmp_path)])
    _write(tmp_path / 'bad.json', pred[:3], ids[:3])
    with pytest.raises(PredictionError, match=r'bad.json: no entry for sample id 7'):
        h3wb_eval.main(['--pred-path', str(tmp_path / 'bad.json'), '--task', 'i2d', '--json-dir', str(tmp_path)])
    np.savez(tmp_path / 'm.npz', sample_id=np.array(ids), coords3d_pred_cam=pred / 1000)
    with pytest.raises(PredictionError, match='metres given'):
        h3wb_eval.main(['--pred-path', str(tmp_path / 'm.npz'), '--task', 'i2d', '--json-dir', str(tmp_path)])
