import numpy as np
import pytest

from posepile.ds.mupots import eval as mupots_eval
from posepile.ds.mupots import main as mupots
from tests.fakes import mupots as fake


def test_match_poses_greedy_in_annotation_order_and_thresholds():
    gt = np.zeros((2, 17, 2))
    gt[0, :] = [100, 100]
    gt[1, :] = [130, 100]
    pred = np.zeros((3, 17, 2))
    pred[0, :] = [125, 100]  # within 40 px of both GTs; closest to GT 1 but GT 0 comes first
    pred[1, :] = [135, 100]  # only near GT 1
    pred[2, :] = [100, 100]
    pred[2, 1:14] = 0  # all matching joints at (0, 0): invisible, never matched
    assert mupots_eval.match_poses(gt, pred).tolist() == [0, 1]
    # |dx| must be strictly below 40
    far = np.zeros((1, 17, 2))
    far[0, :] = [140, 100]
    assert mupots_eval.match_poses(gt[:1], far).tolist() == [-1]
    # counting: the prediction with more joints inside the window wins, ties go to the first
    a = np.full((17, 2), 100.0)
    b = a.copy()
    b[1:5] += 100  # 4 joints far away
    assert mupots_eval.match_poses(gt[:1], np.stack([b, a])).tolist() == [1]
    assert mupots_eval.match_poses(gt[:1], np.stack([a, a])).tolist() == [0]
    assert mupots_eval.match_poses(gt[:1], np.zeros((0, 17, 2))).tolist() == [-1]


def test_bone_rescaling_keeps_directions_and_takes_gt_lengths():
    rng = np.random.default_rng(0)
    gt = rng.normal(0, 300, (17, 3))
    pred = gt * 1.3 + rng.normal(0, 20, (17, 3))
    out = mupots_eval.rescale_to_gt_bone_lengths(pred, gt)
    np.testing.assert_allclose(out[mupots.ROOT_INDEX], pred[mupots.ROOT_INDEX])
    for j in range(17):
        if j == mupots.ROOT_INDEX:
            continue
        parent = mupots.PARENTS[j]
        assert np.linalg.norm(out[j] - out[parent]) == pytest.approx(np.linalg.norm(gt[j] - gt[parent]))
        direction = (pred[j] - pred[parent]) / np.linalg.norm(pred[j] - pred[parent])
        np.testing.assert_allclose((out[j] - out[parent]) / np.linalg.norm(out[j] - out[parent]), direction)


def _predictions(written, scale=1.2, drop_person=1):
    """Per frame: every annotated person except `drop_person` predicted with its exact 2D pose and its
    univ_annot3 enlarged `scale` times about the pelvis and shifted; plus one far-away false positive."""
    paths, coords2d, coords3d = [], [], []
    for sequence, frames in written.items():
        for f, people in enumerate(frames):
            for p, person in enumerate(people):
                if not person['valid'] or p == drop_person:
                    continue
                pose = person['univ_annot3']
                root = pose[mupots.ROOT_INDEX]
                paths.append(mupots.image_relpath(sequence, f))
                coords2d.append(person['annot2'])
                coords3d.append((pose - root) * scale + root + [50, -20, 300])
            paths.append(mupots.image_relpath(sequence, f))
            coords2d.append(np.full((17, 2), 5000.0))
            coords3d.append(np.full((17, 3), 1000.0))
    return paths, np.stack(coords2d), np.stack(coords3d)


def test_mupots_eval_end_to_end(data_root, tmp_path):
    written = fake.write_fake_release(data_root / 'mupots')
    paths, c2, c3 = _predictions(written)
    np.savez(tmp_path / 'p.npz', image_path=np.array(paths), coords2d_pred=c2, coords3d_pred_cam=c3)
    results = mupots_eval.main(['--pred-path', str(tmp_path / 'p.npz')])
    # per sequence: 3 frames x 3 people, minus the unannotated one = 8 annotated; person 1 never predicted
    # -> 5 matched. Bone rescaling undoes the 1.2x scale, root-relative removes the shift: matched PCK 100.
    assert results['pck_matched'] == pytest.approx(100.0)
    assert results['auc_matched'] == pytest.approx(100 * 30 / 31, abs=1e-6)
    assert results['pck_all'] == pytest.approx(100.0 * 5 / 8)
    assert results['recall'] == pytest.approx(5 / 8)
    # without rescaling, the enlarged limbs cost accuracy
    unscaled = mupots_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--no-rescale'])
    assert unscaled['pck_matched'] < 100
    # metric GT differs from univ_annot3 by 5%: rescaled to annot3 bones, directions unchanged -> still 100
    metric = mupots_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--metric-gt'])
    assert metric['pck_matched'] == pytest.approx(100.0)
    # absolute: the 300 mm depth shift is no longer removed
    absolute = mupots_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--absolute'])
    assert absolute['pck_matched'] == pytest.approx(0.0)


def test_official_mat_layout_gives_the_same_numbers(data_root, tmp_path):
    import scipy.io
    written = fake.write_fake_release(data_root / 'mupots')
    paths, c2, c3 = _predictions(written)
    np.savez(tmp_path / 'p.npz', image_path=np.array(paths), coords2d_pred=c2, coords3d_pred_cam=c3)
    fields2d, fields3d = {}, {}
    for i, path in enumerate(paths):
        sequence, name = path.split('/')[-2], path.split('/')[-1]
        key = f'{sequence}_img_{int(name[4:10]):06d}'
        fields2d.setdefault(key, []).append(c2[i])
        fields3d.setdefault(key, []).append(c3[i])
    folder = tmp_path / 'official'
    folder.mkdir()
    scipy.io.savemat(str(folder / 'preds_2d_kpt_mupots.mat'), {k: np.stack(v) for k, v in fields2d.items()})
    scipy.io.savemat(str(folder / 'preds_3d_kpt_mupots.mat'), {k: np.stack(v) for k, v in fields3d.items()})
    a = mupots_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--no-rescale'])
    b = mupots_eval.main(['--pred-path', str(folder), '--no-rescale'])
    for key in ('pck_all', 'auc_all', 'pck_matched', 'auc_matched'):
        assert a[key] == pytest.approx(b[key])
