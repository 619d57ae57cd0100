"""EMDB evaluator on a fake release in the official layout (<subject>/<sequence>/<subject>_<sequence>_data.pkl with
the keys eth-ait/emdb's evaluation_engine.py reads) with toy SMPL models; expected numbers are re-derived here."""
import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posepile.bodymodels.transform import rototranslate_arrays
from posepile.ds.emdb import eval as emdb_eval
from posepile.eval.predictions import PredictionError
from tests.toy_bodymodels import write_toy_model

N_FRAMES = 12


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp('emdb')
    model_dir = root / 'models'
    for gender in ('female', 'male', 'neutral'):
        write_toy_model(model_dir, 'smpl', gender, seed={'female': 1, 'male': 2, 'neutral': 3}[gender])
    rng = np.random.default_rng(0)
    specs = [('P0', '09_outdoor_walk', 'male', True), ('P1', '14_outdoor_climb', 'female', True),
             ('P2', '19_indoor_walk_off_mvs', 'male', False)]
    for subject, sequence, gender, emdb1 in specs:
        good = np.ones(N_FRAMES, bool)
        good[[2, 7]] = False
        extrinsics = np.tile(np.eye(4), (N_FRAMES, 1, 1))
        extrinsics[:, :3, :3] = Rotation.random(N_FRAMES, random_state=rng.integers(1000)).as_matrix()
        extrinsics[:, :3, 3] = rng.uniform(-2, 2, (N_FRAMES, 3))
        data = {'n_frames': N_FRAMES, 'gender': gender, 'emdb1': emdb1, 'good_frames_mask': good,
                'smpl': {'poses_root': rng.normal(0, 0.5, (N_FRAMES, 3)),
                         'poses_body': rng.normal(0, 0.2, (N_FRAMES, 69)),
                         'betas': rng.normal(0, 1, 10), 'trans': rng.uniform(-1, 1, (N_FRAMES, 3))},
                'camera': {'extrinsics': extrinsics, 'intrinsics': np.eye(3)}}
        folder = root / subject / sequence
        folder.mkdir(parents=True)
        with open(folder / f'{subject}_{sequence}_data.pkl', 'wb') as f:
            pickle.dump(data, f)
    return root, model_dir


@pytest.fixture(scope='module')
def tracks(release):
    root, model_dir = release
    return emdb_eval.ground_truth(emdb_eval.list_sequences(root), emdb_eval.ModelCache(model_dir))


def _write_vertex_predictions(path, tracks, transform=lambda j, v, o, t: (j, v, o), orientations=True):
    paths, joints, vertices, rots = [], [], [], []
    for t in tracks:
        j, v, o = transform(t['joints'].copy(), t['vertices'].copy(), t['orientations'][:, list(emdb_eval.ANGLE_JOINTS)]
                            .copy(), t)
        paths += [emdb_eval.image_relpath(t['subject'], t['sequence'], f) for f in t['frames']]
        joints.append(j)
        vertices.append(v)
        rots.append(o)
    arrays = dict(image_path=np.array(paths), joints3d_pred_cam=np.concatenate(joints),
                  vertices3d_pred_cam=np.concatenate(vertices))
    if orientations:
        arrays['orientations_pred_cam'] = np.concatenate(rots)
    np.savez(path, **arrays)


def _evaluate(path, release, tracks, **kwargs):
    predictions, _ = emdb_eval.load_npz_predictions(path, tracks, emdb_eval.ModelCache(release[1]))
    return emdb_eval.evaluate(tracks, predictions, **kwargs)


def test_emdb1_selection_and_good_frames(tracks):
    assert [(t['subject'], t['sequence']) for t in tracks] == [('P0', '09_outdoor_walk'), ('P1', '14_outdoor_climb')]
    assert all(len(t['frames']) == N_FRAMES - 2 and 2 not in t['frames'] for t in tracks)


def test_ground_truth_is_the_model_in_the_camera_frame(release, tracks):
    # re-state: joints of the gendered model, then R X + t per frame
    from posepile import bodymodels
    root, model_dir = release
    with open(root / 'P1' / '14_outdoor_climb' / 'P1_14_outdoor_climb_data.pkl', 'rb') as f:
        data = pickle.load(f)
    model = bodymodels.load('smpl', 'female', model_dir)
    frame = 5
    pose = np.concatenate([data['smpl']['poses_root'][frame], data['smpl']['poses_body'][frame]])
    joints = model(pose[None], data['smpl']['betas'][None], data['smpl']['trans'][frame][None])['joints'][0]
    E = data['camera']['extrinsics'][frame]
    expected_mm = (joints @ E[:3, :3].T + E[:3, 3]) * 1000
    row = list(tracks[1]['frames']).index(frame)
    np.testing.assert_allclose(tracks[1]['joints'][row], expected_mm, atol=1e-6)


def test_identity_and_pure_translation_score_zero(tmp_path, release, tracks):
    def shift(j, v, o, t):
        offset = np.array([120.0, -40.0, 3000.0])
        return j + offset, v + offset, o
    _write_vertex_predictions(tmp_path / 'p.npz', tracks, shift)
    r = _evaluate(tmp_path / 'p.npz', release, tracks)
    assert r['n_frames'] == 2 * (N_FRAMES - 2)
    for key in ('MPJPE', 'MPJPE_PA', 'MVE', 'MVE_PA', 'MPJAE', 'MPJAE_PA'):
        assert r[key] == pytest.approx(0, abs=1e-6), key


def test_known_rotation_and_scale(tmp_path, release, tracks):
    """Whole body turned by 30 deg about the mid-hip and scaled x1.1: PA metrics 0, MPJAE 30 deg; MPJPE and
    MVE equal the mean |(1.1 Q - I) (x - midhip)| computed here."""
    Q = Rotation.from_rotvec(np.radians(30) * np.array([0, 0.6, 0.8])).as_matrix()

    def turn(j, v, o, t):
        hip = (j[:, 1:2] + j[:, 2:3]) / 2
        return 1.1 * (j - hip) @ Q.T + hip, 1.1 * (v - hip) @ Q.T + hip, Q @ o
    _write_vertex_predictions(tmp_path / 'p.npz', tracks, turn)
    r = _evaluate(tmp_path / 'p.npz', release, tracks)
    gt_j = np.concatenate([t['joints'] for t in tracks])
    gt_v = np.concatenate([t['vertices'] for t in tracks])
    hip = (gt_j[:, 1:2] + gt_j[:, 2:3]) / 2
    expected_mpjpe = np.mean(np.linalg.norm((gt_j - hip) @ (1.1 * Q - np.eye(3)).T, axis=-1))
    expected_mve = np.mean(np.linalg.norm((gt_v - hip) @ (1.1 * Q - np.eye(3)).T, axis=-1))
    assert r['MPJPE'] == pytest.approx(expected_mpjpe, rel=1e-9)
    assert r['MVE'] == pytest.approx(expected_mve, rel=1e-9)
    assert r['MPJPE_PA'] == pytest.approx(0, abs=1e-6)
    assert r['MVE_PA'] == pytest.approx(0, abs=1e-6)
    assert r['MPJAE'] == pytest.approx(30, abs=1e-6)
    assert r['MPJAE_PA'] == pytest.approx(0, abs=1e-5)


def _reference_frame(pred_j, gt_j, pred_v, gt_v):
    """The official per-frame computation re-stated: mid-hip, Procrustes on joints (3 x N layout), applied to
    the vertices too."""
    ph, gh = (pred_j[1] + pred_j[2]) / 2, (gt_j[1] + gt_j[2]) / 2
    P, G, PV, GV = (pred_j - ph).T, (gt_j - gh).T, (pred_v - ph).T, (gt_v - gh).T
    mu1, mu2 = P.mean(1, keepdims=True), G.mean(1, keepdims=True)
    K = (P - mu1) @ (G - mu2).T
    U, _, Vh = np.linalg.svd(K)
    Z = np.eye(3)
    Z[-1, -1] = np.sign(np.linalg.det(U @ Vh))
    R = Vh.T @ Z @ U.T
    s = np.trace(R @ K) / np.sum((P - mu1) ** 2)
    t = mu2 - s * R @ mu1
    return (np.linalg.norm(P - G, axis=0).mean(), np.linalg.norm(s * R @ P + t - G, axis=0).mean(),
            np.linalg.norm(PV - GV, axis=0).mean(), np.linalg.norm(s * R @ PV + t - GV, axis=0).mean())


def test_random_noise_matches_the_restated_official_loop(tmp_path, release, tracks):
    rng = np.random.default_rng(5)
    noise = {}

    def jitter(j, v, o, t):
        nj, nv = rng.normal(0, 30, j.shape), rng.normal(0, 30, v.shape)
        noise[t['sequence']] = (nj, nv)
        return j + nj, v + nv, o
    _write_vertex_predictions(tmp_path / 'p.npz', tracks, jitter, orientations=False)
    r = _evaluate(tmp_path / 'p.npz', release, tracks)
    rows = [_reference_frame(t['joints'][i] + noise[t['sequence']][0][i], t['joints'][i],
                             t['vertices'][i] + noise[t['sequence']][1][i], t['vertices'][i])
            for t in tracks for i in range(len(t['frames']))]
    expected = np.mean(rows, axis=0)
    for key, value in zip(('MPJPE', 'MPJPE_PA', 'MVE', 'MVE_PA'), expected):
        assert r[key] == pytest.approx(value, rel=1e-9), key
    assert 'MPJAE' not in r


def test_jitter_of_a_cubic_trajectory(tmp_path, release, tracks):
    """Every joint moving as x = c t^3 (t in frames) has jerk 6 c fps^3 (m/s^3 for c in m); the official mean
    over 24 joints with 9 zeroed is 15/24 of it, /10."""
    c_m = 1e-4

    def cubic(j, v, o, t):
        frames = np.arange(len(j))[:, None, None]
        return j + c_m * 1000 * frames ** 3 * np.array([1.0, 0, 0]), v, o
    _write_vertex_predictions(tmp_path / 'p.npz', tracks, cubic)
    jerk = 6 * c_m * 30 ** 3
    r = _evaluate(tmp_path / 'p.npz', release, tracks)
    # the GT's own jerk adds to the cubic one: compare against the joints actually given
    from posepile.eval import mesh_metrics
    expected = np.mean([mesh_metrics.emdb_jitter(t['joints'] / 1000 + c_m * np.arange(len(t['frames']))[:, None, None]
                                                 ** 3 * np.array([1.0, 0, 0])) for t in tracks])
    assert r['Jitter'] == pytest.approx(expected, rel=1e-9)
    # and the pure cubic motion alone (no GT motion): exactly 15/24 * jerk / 10
    still = np.zeros((10, 24, 3)) + c_m * np.arange(10)[:, None, None] ** 3 * np.array([1.0, 0, 0])
    assert mesh_metrics.emdb_jitter(still) == pytest.approx(jerk * 15 / 24 / 10, rel=1e-9)
    assert mesh_metrics.emdb_jitter(still, scored_joints_only=True) == pytest.approx(jerk / 10, rel=1e-9)


def _camera_parameters(release, tracks, gender_of=None):
    from posepile import bodymodels
    root, model_dir = release
    paths, poses, betas, trans = [], [], [], []
    for t in tracks:
        with open(root / t['subject'] / t['sequence'] / f'{t["subject"]}_{t["sequence"]}_data.pkl', 'rb') as f:
            data = pickle.load(f)
        model = bodymodels.load('smpl', gender_of or t['gender'], model_dir)
        for frame in t['frames']:
            E = data['camera']['extrinsics'][frame]
            pose = np.concatenate([data['smpl']['poses_root'][frame], data['smpl']['poses_body'][frame]])
            p, tr = rototranslate_arrays(pose, data['smpl']['betas'], data['smpl']['trans'][frame], E[:3, :3],
                                         -E[:3, :3].T @ E[:3, 3], model)
            paths.append(emdb_eval.image_relpath(t['subject'], t['sequence'], frame))
            poses.append(p)
            betas.append(data['smpl']['betas'])
            trans.append(tr)
    return dict(image_path=np.array(paths), pose=np.array(poses), betas=np.array(betas), trans=np.array(trans))


def test_smpl_parameter_predictions(tmp_path, release, tracks):
    arrays = _camera_parameters(release, tracks)
    np.savez(tmp_path / 'p.npz', **arrays)
    r = _evaluate(tmp_path / 'p.npz', release, tracks)  # no gender: the GT's gendered model (official default)
    for key in ('MPJPE', 'MPJPE_PA', 'MVE', 'MVE_PA', 'MPJAE', 'MPJAE_PA'):
        assert r[key] == pytest.approx(0, abs=1e-3), key
    # a neutral gender in the file changes the body model, hence the errors
    np.savez(tmp_path / 'n.npz', **arrays, gender='neutral')
    assert _evaluate(tmp_path / 'n.npz', release, tracks)['MVE'] > 1
    # the translation is zeroed by default (official), so Jitter comes from the translation-free joints
    with_trans = emdb_eval.load_npz_predictions(tmp_path / 'p.npz', tracks, emdb_eval.ModelCache(release[1]),
                                                keep_pred_trans=True)[0]
    kept = emdb_eval.evaluate(tracks, with_trans)
    assert kept['MPJPE'] == pytest.approx(r['MPJPE'], abs=1e-6)
    assert kept['Jitter'] != pytest.approx(r['Jitter'], rel=1e-3)


def test_extra_frames_ignored_missing_frames_refused(tmp_path, release, tracks):
    arrays = _camera_parameters(release, tracks)
    extra = {k: np.concatenate([v, v[:1]]) for k, v in arrays.items()}
    extra['image_path'][-1] = emdb_eval.image_relpath('P0', '09_outdoor_walk', 2)  # a frame outside the mask
    np.savez(tmp_path / 'extra.npz', **extra)
    assert _evaluate(tmp_path / 'extra.npz', release, tracks)['n_frames'] == 20
    np.savez(tmp_path / 'short.npz', **{k: v[1:] for k, v in arrays.items()})
    with pytest.raises(PredictionError, match=r'short.npz: 1 of 20 benchmark items have no prediction'):
        _evaluate(tmp_path / 'short.npz', release, tracks)
    np.savez(tmp_path / 'pose.npz', **dict(arrays, pose=arrays['pose'][:, :69]))
    with pytest.raises(PredictionError, match=r'pose.npz: "pose" must have shape \(N, 72\)'):
        _evaluate(tmp_path / 'pose.npz', release, tracks)


def test_vertices_in_metres_refused(tmp_path, release, tracks):
    _write_vertex_predictions(tmp_path / 'm.npz', tracks, lambda j, v, o, t: (j / 1000, v / 1000, o))
    with pytest.raises(PredictionError, match='metres given'):
        _evaluate(tmp_path / 'm.npz', release, tracks)


def test_cli_header_names_the_variants(tmp_path, release, tracks, capsys, monkeypatch):
    _write_vertex_predictions(tmp_path / 'p.npz', tracks)
    r = emdb_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--emdb-root', str(release[0]), '--smpl-dir',
                        str(release[1]), '--jitter-scored-joints-only'])
    out = capsys.readouterr().out
    assert 'EMDB1: 2 sequences, 20 good frames' in out and 'Jitter over 15 scored joints' in out
    assert r['MPJPE'] == pytest.approx(0, abs=1e-6)
