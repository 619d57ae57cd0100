"""Shared alignment and mesh metrics (posepile.eval.alignment, posepile.eval.mesh_metrics): hand-computed cases."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posepile.eval import alignment, mesh_metrics, metrics


def _points(n=2, p=30, seed=0):
    return np.random.default_rng(seed).normal(0, 100, (n, p, 3))


def test_identity_and_pure_translation():
    x = _points()
    s, R, t = alignment.fit_similarity(x, x)
    np.testing.assert_allclose(s, 1)
    np.testing.assert_allclose(R, np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(t, 0, atol=1e-9)
    s, R, t = alignment.fit_similarity(x, x + [5.0, -7, 11])
    np.testing.assert_allclose(t, np.broadcast_to([5.0, -7, 11], t.shape), atol=1e-9)
    assert mesh_metrics.procrustes_errors(x + [5.0, -7, 11], x) == pytest.approx([0, 0], abs=1e-9)


def test_known_rotation_and_scale_recovered():
    x = _points(n=1)[0]
    Q = Rotation.from_rotvec([0.3, -1.2, 0.5]).as_matrix()
    y = 1.7 * x @ Q.T + [1.0, 2, 3]
    s, R, t = alignment.fit_similarity(x, y)
    assert s == pytest.approx(1.7)
    np.testing.assert_allclose(R, Q, atol=1e-12)
    np.testing.assert_allclose(t, [1, 2, 3], atol=1e-9)
    # the inverse direction: scale 1 / 1.7, rotation Q^T
    s, R, _ = alignment.fit_similarity(y, x)
    assert s == pytest.approx(1 / 1.7) and np.allclose(R, Q.T)
    # rigid: scale fixed to 1
    assert alignment.fit_similarity(x, y, scale=False)[0] == 1


def test_reflection_never_used_and_equal_to_metrics_procrustes():
    x = _points(n=3, seed=1)
    mirrored = x * [-1, 1, 1] + np.random.default_rng(2).normal(0, 5, x.shape)
    _, R, _ = alignment.fit_similarity(x, mirrored)
    assert np.allclose(np.linalg.det(R), 1)
    np.testing.assert_allclose(alignment.procrustes_align(x, mirrored), metrics.procrustes_align(x, mirrored),
                               atol=1e-9)
    # the transform fitted on a subset moves other points too (EMDB's joints -> vertices)
    verts = _points(n=3, p=50, seed=3)
    _, moved = alignment.procrustes_align(x, mirrored, also=verts)
    s, R, t = alignment.fit_similarity(x, mirrored)
    np.testing.assert_allclose(moved, s[:, None, None] * verts @ R.transpose(0, 2, 1) + t[:, None], atol=1e-9)


def test_mid_hip_rms_and_centroid():
    joints = np.zeros((4, 3))
    joints[1], joints[2] = [2.0, 0, 0], [4.0, 2, 0]
    np.testing.assert_allclose(alignment.mid_hip(joints, 1, 2), [3, 1, 0])
    a = np.array([[0.0, 0, 0], [2, 0, 0]])
    np.testing.assert_allclose(alignment.centroid_align(a, a + 10), a + 10)
    b = np.array([[0.0, 0, 0], [0, 4, 0]])
    # same centroid as b, same RMS radius (2), direction of a kept
    np.testing.assert_allclose(alignment.rms_scale_translation_align(a, b), [[-2, 2, 0], [2, 2, 0]], atol=1e-12)


def test_jitter_of_a_known_sequence():
    # x(t) = c t^3 frames: third difference 6 c, jerk 6 c fps^3; 3 joints move, 1 stands still
    c, fps = 0.002, 30
    t = np.arange(7)[:, None, None]
    seq = np.zeros((7, 4, 3))
    seq[:, :3, 0] = (c * t ** 3)[:, :, 0]
    jerk = mesh_metrics.jerk_magnitudes(seq, fps)
    assert jerk.shape == (4, 4)
    np.testing.assert_allclose(jerk[:, :3], 6 * c * fps ** 3)
    np.testing.assert_allclose(jerk[:, 3], 0)
    # a constant-acceleration motion has no jerk
    np.testing.assert_allclose(mesh_metrics.jerk_magnitudes(seq * 0 + t ** 2, fps), 0, atol=1e-9)
    assert np.isnan(mesh_metrics.emdb_jitter(np.zeros((3, 24, 3))))


def test_angles_and_iou():
    Q = Rotation.from_rotvec(np.radians(40) * np.array([0, 0, 1.0])).as_matrix()
    assert mesh_metrics.angle_errors_deg(Q[None, None], np.eye(3)[None, None])[0, 0] == pytest.approx(40)
    assert mesh_metrics.iou_from_counts(3, 1, 2) == pytest.approx(0.5)
    assert np.isnan(mesh_metrics.iou_from_counts(0, 0, 0))
    assert mesh_metrics.silhouette_counts(np.eye(3, dtype=bool), np.ones((3, 3), bool)) == (3, 0, 6)


def test_root_aligned_errors_by_hand():
    gt = np.zeros((1, 2, 3))
    pred = np.array([[[10.0, 0, 0], [10, 3, 4]]])
    # roots: gt (0,0,0), pred (10,0,0): after subtraction the errors are 0 and 5
    assert mesh_metrics.root_aligned_errors(pred, gt, pred[:, 0], gt[:, 0])[0] == pytest.approx(2.5)


def test_tdpw_mesh_metrics(data_root, tmp_path):
    """3DPW MVE / PA_PVE beside the challenge metrics (posepile.ds.tdpw.mesh_eval via the eval CLI): GT meshes
    from the gendered toy SMPL; a prediction turned by 20 deg and scaled about its root joint has PA_PVE 0 and
    MVE = mean |(1.05 Q - I)(v - root)|, computed here."""
    from posepile.ds.tdpw import eval as tdpw_eval
    from posepile.ds.tdpw import main as tdpw
    from posepile.ds.tdpw import mesh_eval
    from tests.fakes import tdpw as fake
    fake.write_smpl_models(tmp_path / 'smpl')
    fake.write_fake_release(data_root / 'tdpw', smpl_dir=tmp_path / 'smpl', n_frames=6)
    tracks = tdpw_eval.ground_truth_tracks(data_root / 'tdpw', ('test',), tmp_path / 'smpl')
    models = {g: tdpw_eval.load_gt_smpl_model(tmp_path / 'smpl', g) for g in tdpw_eval.SMPL_FILES}
    Q = Rotation.from_rotvec(np.radians(20) * np.array([1.0, 0, 0])).as_matrix()
    paths, actors, joints, vertices, expected = [], [], [], [], []
    for t in tracks:
        gt_v = mesh_eval.gt_vertices(data_root / 'tdpw', t, models)
        root = t['gt'][:, :1]
        joints.append(1.05 * (t['gt'] - root) @ Q.T + root + [0, 0, 500.0])
        vertices.append(1.05 * (gt_v - root) @ Q.T + root + [0, 0, 500.0])
        expected.append(np.linalg.norm((gt_v - root) @ (1.05 * Q - np.eye(3)).T, axis=-1).mean(axis=1))
        paths += [tdpw.image_relpath(t['sequence'], int(f)) for f in t['frames']]
        actors += [t['actor']] * len(t['frames'])
    np.savez(tmp_path / 'p.npz', image_path=np.array(paths), person_index=np.array(actors),
             coords3d_pred_cam=np.concatenate(joints), vertices3d_pred_cam=np.concatenate(vertices))
    r = tdpw_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--test-split', '--smpl-dir', str(tmp_path / 'smpl')])
    assert r['MVE'] == pytest.approx(np.mean(np.concatenate(expected)), rel=1e-6)
    assert r['PA_PVE'] == pytest.approx(0, abs=1e-4) and r['MPJPE_PA'] == pytest.approx(0, abs=1e-6)
    # without --smpl-dir no mesh metric (no GT meshes)
    assert 'MVE' not in tdpw_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--test-split'])
