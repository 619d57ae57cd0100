"""EMDB benchmark, the EMDB1 protocol of the official evaluator (eth-ait/emdb: evaluate.py, evaluation_engine.py,
evaluation_metrics.py).

Sequences: every `<subject>/<sequence>/<subject>_<sequence>_data.pkl` under $DATA_ROOT/emdb whose `emdb1` flag is
set; per sequence only the frames of `good_frames_mask`. Ground truth: the release's SMPL parameters
(`smpl.poses_root`, `poses_body`, `betas` (10), `trans`) through the SMPL model of the sequence's `gender`
(posepile.bodymodels; the 24 skeleton joints, 6890 vertices and the global joint orientations), moved into the
camera with the per-frame world-to-camera `camera.extrinsics`. Metrics, per frame, then pooled over all frames of
all sequences (Jitter: per sequence, then the mean over sequences):
- MPJPE: 24 joints, both skeletons made relative to their mid-hip (joints 1 and 2);
- MVE: 6890 vertices relative to the same mid-hip;
- PA-MPJPE: after the similarity Procrustes fitted on the 24 (mid-hip aligned) joints;
- MVE-PA: the vertices moved by THAT joint-fitted transform (not a vertex fit), as the official code;
- MPJAE / MPJAE-PA: the geodesic angle between the predicted and true camera-frame global orientations of the 9
  SMPL joints 0, 1, 2, 4, 5, 16, 17, 18, 19 (PA: the predicted ones turned by the Procrustes rotation);
- Jitter (10 m/s^3): the PIP jerk of the PREDICTED joints at 30 fps over the good frames of a sequence taken
  as consecutive, joints 0, 7, 8, 10, 11, 20, 21, 22, 23 zeroed but still averaged over (see
  posepile.eval.mesh_metrics.emdb_jitter).

Arguable official behaviours kept by default, each with its flag (printed in the header):
- the predicted SMPL translation is set to zero before everything (the evaluator's ignore_smpl_trans=True;
  it changes only Jitter): `--keep-pred-trans` keeps it;
- Jitter averages over all 24 joints with the 9 ignored ones at zero jerk: `--jitter-scored-joints-only`
  averages over the other 15 (x 24/15);
- predicted parameters without a `gender` are run through the GROUND TRUTH's gendered model (the evaluator's
  default for a method without its own gender; it uses neutral only for HybrIK): put `gender` in the file
  (e.g. 'neutral') to choose.

    python -m posepile.ds.emdb.eval --pred-path preds.npz [--smpl-dir DIR] [--all-sequences]

Predictions: an .npz with `image_path` (`emdb/<subject>/<sequence>/images/<frame:05d>.jpg`), one row per good
frame of every EMDB1 sequence (rows of other frames of those sequences are ignored), camera frame, either
- SMPL parameters: `pose` (N, 72) axis-angle, `betas` (N, 10), `trans` (N, 3) METRES, optional `gender`
  ('neutral', 'female', 'male'; one value or one per row), or
- `joints3d_pred_cam` (N, 24, 3) and `vertices3d_pred_cam` (N, 6890, 3) in mm, optional
  `orientations_pred_cam` (N, 9, 3, 3) (else no MPJAE); Jitter is then taken from the joints as given (there is
  no translation to remove).
"""
import argparse
import logging
import pickle
from pathlib import Path

import numpy as np

from posepile.eval.mesh_metrics import SMPLModelCache as ModelCache
from posepile.eval import alignment, mesh_metrics, report
from posepile.eval.mesh_predictions import (check_pose_scale, float_array, match_rows,
                                            optional_strings, read_prediction_arrays, restrict_rows)
from posepile.eval.predictions import load_predictions
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
ANGLE_JOINTS = (0, 1, 2, 4, 5, 16, 17, 18, 19)
LEFT_HIP, RIGHT_HIP = 1, 2
FPS = 30
N_JOINTS, N_VERTICES = 24, 6890
GENDERS = ('neutral', 'female', 'male')


class EMDBFormatError(InputError):
    pass


def image_relpath(subject, sequence, frame):
    return f'emdb/{subject}/{sequence}/images/{int(frame):05d}.jpg'


def load_sequence_file(path):
    """The release's per-sequence dict, its arrays checked: n_frames, gender, emdb1, good_frames_mask (F,),
    smpl poses_root (F, 3), poses_body (F, 69), betas (>= 10), trans (F, 3), camera extrinsics (F, 4, 4)."""
    try:
        with open(path, 'rb') as f:
            data = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as e:
        raise EMDBFormatError(f'{path}: not a readable EMDB data pickle ({type(e).__name__}: {e})') from e
    try:
        smpl = data['smpl']
        n = int(data['n_frames'])
        result = dict(
            n_frames=n, gender=str(data['gender']), emdb1=bool(data['emdb1']),
            good=np.asarray(data['good_frames_mask'], bool).reshape(-1),
            poses_root=np.asarray(smpl['poses_root'], np.float64),
            poses_body=np.asarray(smpl['poses_body'], np.float64),
            betas=np.asarray(smpl['betas'], np.float64).reshape(-1),
            trans=np.asarray(smpl['trans'], np.float64),
            extrinsics=np.asarray(data['camera']['extrinsics'], np.float64))
    except (KeyError, TypeError, ValueError) as e:
        raise EMDBFormatError(f'{path}: missing or unreadable entry ({type(e).__name__}: {e})') from e
    expected = dict(good=(n,), poses_root=(n, 3), poses_body=(n, 69), trans=(n, 3), extrinsics=(n, 4, 4))
    for key, shape in expected.items():
        if result[key].shape != shape:
            raise EMDBFormatError(f'{path}: {key} has shape {result[key].shape}, expected {shape} for {n} frames')
    if len(result['betas']) < 10:
        raise EMDBFormatError(f'{path}: {len(result["betas"])} betas, expected 10')
    if result['gender'] not in GENDERS:
        raise EMDBFormatError(f'{path}: gender {result["gender"]!r} is not one of {GENDERS}')
    return result


def list_sequences(root, emdb1_only=True):
    """[(subject, sequence, data)] of the release under root, sorted; only EMDB1 ones by default."""
    paths = sorted(Path(root).glob('*/*/*_data.pkl'))
    if not paths:
        raise EMDBFormatError(f'{root}: no <subject>/<sequence>/*_data.pkl files (is this the EMDB release?)')
    result = []
    for path in paths:
        subject, sequence = path.parent.parent.name, path.parent.name
        if path.name != f'{subject}_{sequence}_data.pkl':
            continue
        data = load_sequence_file(path)
        if data['emdb1'] or not emdb1_only:
            result.append((subject, sequence, data))
    if not result:
        raise EMDBFormatError(f'{root}: no sequence has the emdb1 flag set')
    return result


def smpl_forward(model, pose, betas, trans):
    """(joints (N, 24, 3), vertices (N, 6890, 3), orientations (N, 24, 3, 3)) in metres, float64."""
    out = model(pose, betas[:, :10] if betas.ndim == 2 else betas[:10], trans, return_orientations=True)
    return out['joints'], out['vertices'].astype(np.float64), out['orientations']


def to_camera(points, extrinsics):
    """X_cam = R X + t per frame: points (N, P, 3), extrinsics (N, 4, 4) world to camera."""
    return np.einsum('nij,npj->npi', extrinsics[:, :3, :3], points) + extrinsics[:, np.newaxis, :3, 3]




def ground_truth(sequences, models):
    """Per sequence a dict: subject, sequence, gender, frames (good indices), joints (F, 24, 3) mm,
    vertices (F, 6890, 3) mm, orientations (F, 24, 3, 3), all in the camera frame."""
    result = []
    for subject, sequence, data in sequences:
        frames = np.flatnonzero(data['good'])
        pose = np.concatenate([data['poses_root'], data['poses_body']], axis=1)[frames]
        joints, vertices, orientations = smpl_forward(models(data['gender']), pose, data['betas'][:10],
                                                      data['trans'][frames])
        extrinsics = data['extrinsics'][frames]
        result.append(dict(
            subject=subject, sequence=sequence, gender=data['gender'], frames=frames,
            joints=to_camera(joints, extrinsics) * 1000, vertices=to_camera(vertices, extrinsics) * 1000,
            orientations=np.matmul(extrinsics[:, np.newaxis, :3, :3], orientations)))
    return result


def load_npz_predictions(path, tracks, models, keep_pred_trans=False):
    """Per track dict joints (F, 24, 3) mm, vertices (F, 6890, 3) mm, orientations (F, 9, 3, 3) or None,
    jitter_joints_m (F, 24, 3) (the joints the official Jitter sees), from the file at `path`."""
    arrays = read_prediction_arrays(path)
    expected = [image_relpath(t['subject'], t['sequence'], f) for t in tracks for f in t['frames']]
    # rows of the evaluated sequences' other frames are dropped (the official loader reads every frame)
    expected_set = set(expected)
    folders = {f'emdb/{t["subject"]}/{t["sequence"]}/images/' for t in tracks}
    if 'image_path' in arrays:
        names = [str(x) for x in np.asarray(arrays['image_path']).ravel()]
        other_frames = {n for n in names if n not in expected_set and n.rsplit('/', 1)[0] + '/' in folders}
        if other_frames:
            arrays = restrict_rows(path, arrays, set(names) - other_frames)
    rows = match_rows(path, arrays, expected)
    n = len(expected)
    n_vertices = tracks[0]['vertices'].shape[1] if tracks else N_VERTICES  # 6890 (fewer for toy models)
    if 'pose' in arrays or 'betas' in arrays or 'trans' in arrays:
        pose = float_array(path, arrays, 'pose', (72,), rows)
        betas = float_array(path, arrays, 'betas', ((10, 11, 12, 13, 14, 15, 16),), rows)[:, :10]
        trans = float_array(path, arrays, 'trans', (3,), rows, unit='metres')
        genders = optional_strings(path, arrays, 'gender', n, rows, allowed=GENDERS + ('f', 'm', 'n'))
        genders = [{'f': 'female', 'm': 'male', 'n': 'neutral'}.get(g, g) for g in genders] if genders else None
        result, start = [], 0
        for t in tracks:
            sl = slice(start, start + len(t['frames']))
            start = sl.stop
            seq_genders = genders[sl] if genders else [t['gender']] * len(t['frames'])
            joints = np.zeros((len(t['frames']), N_JOINTS, 3))
            vertices = np.zeros((len(t['frames']), n_vertices, 3))
            orientations = np.zeros((len(t['frames']), N_JOINTS, 3, 3))
            for gender in sorted(set(seq_genders)):
                idx = np.flatnonzero(np.array(seq_genders) == gender)
                tr = trans[sl][idx] if keep_pred_trans else np.zeros((len(idx), 3))
                j, v, o = smpl_forward(models(gender), pose[sl][idx], betas[sl][idx], tr)
                joints[idx], vertices[idx], orientations[idx] = j, v, o
            if len(joints):
                check_pose_scale(joints, path, unit='metres', factor_to_mm=1000)
            result.append(dict(joints=joints * 1000, vertices=vertices * 1000,
                               orientations=orientations[:, list(ANGLE_JOINTS)], jitter_joints_m=joints))
        return result, ('SMPL parameters (gender: ' + ('from the file' if genders else "the ground truth's") + ')')
    joints = load_predictions(path, expected, N_JOINTS, coord_key='joints3d_pred_cam', arrays=arrays)
    vertices = load_predictions(path, expected, n_vertices, coord_key='vertices3d_pred_cam', arrays=arrays)
    orientations = None
    if 'orientations_pred_cam' in arrays:
        orientations = float_array(path, arrays, 'orientations_pred_cam', (len(ANGLE_JOINTS), 3, 3), rows)
    result, start = [], 0
    for t in tracks:
        keys = expected[start:start + len(t['frames'])]
        j = np.stack([joints[k] for k in keys]) if keys else np.zeros((0, N_JOINTS, 3))
        v = np.stack([vertices[k] for k in keys]) if keys else np.zeros((0, n_vertices, 3))
        o = None if orientations is None else orientations[start:start + len(keys)]
        result.append(dict(joints=j, vertices=v, orientations=o, jitter_joints_m=j / 1000))
        start += len(keys)
    return result, 'joints and vertices'


def evaluate_track(track, pred, jitter_scored_joints_only=False):
    """Per-frame errors of one sequence: dict of (F,) arrays mpjpe, mpjpe_pa, mve, mve_pa, and mpjae, mpjae_pa
    (F,) (means over the 9 joints) when orientations exist; plus the sequence's jitter."""
    gt_root = alignment.mid_hip(track['joints'], LEFT_HIP, RIGHT_HIP)
    pred_root = alignment.mid_hip(pred['joints'], LEFT_HIP, RIGHT_HIP)
    gt_joints, pred_joints = alignment.subtract_root(track['joints'], gt_root), \
        alignment.subtract_root(pred['joints'], pred_root)
    gt_vertices, pred_vertices = alignment.subtract_root(track['vertices'], gt_root), \
        alignment.subtract_root(pred['vertices'], pred_root)
    s, R, t = alignment.fit_similarity(pred_joints, gt_joints)
    result = dict(
        mpjpe=mesh_metrics.per_frame_mean_distance(pred_joints, gt_joints),
        mve=mesh_metrics.per_frame_mean_distance(pred_vertices, gt_vertices),
        mpjpe_pa=mesh_metrics.per_frame_mean_distance(alignment.apply_similarity(pred_joints, s, R, t), gt_joints),
        mve_pa=mesh_metrics.per_frame_mean_distance(alignment.apply_similarity(pred_vertices, s, R, t),
                                                    gt_vertices))
    if pred['orientations'] is not None:
        gt_rot = track['orientations'][:, list(ANGLE_JOINTS)]
        result['mpjae'] = np.mean(mesh_metrics.angle_errors_deg(pred['orientations'], gt_rot), axis=1)
        pred_rot_pa = np.matmul(R[:, np.newaxis], pred['orientations'])
        result['mpjae_pa'] = np.mean(mesh_metrics.angle_errors_deg(pred_rot_pa, gt_rot), axis=1)
    result['jitter'] = mesh_metrics.emdb_jitter(pred['jitter_joints_m'], FPS,
                                                scored_joints_only=jitter_scored_joints_only)
    return result


METRICS = (('MPJPE', 'mpjpe', 'mm'), ('MPJPE_PA', 'mpjpe_pa', 'mm'), ('MVE', 'mve', 'mm'),
           ('MVE_PA', 'mve_pa', 'mm'), ('MPJAE', 'mpjae', 'deg'), ('MPJAE_PA', 'mpjae_pa', 'deg'))


def evaluate(tracks, predictions, jitter_scored_joints_only=False):
    """Official aggregation: per-frame values pooled over all sequences' frames; Jitter the mean over
    sequences of the per-sequence jitter. Returns the result dict (with per-sequence rows under 'sequences')."""
    per_track = [evaluate_track(t, p, jitter_scored_joints_only) for t, p in zip(tracks, predictions)]
    results = {'n_sequences': len(tracks), 'n_frames': int(sum(len(t['frames']) for t in tracks))}
    for name, key, _ in METRICS:
        if all(key in r for r in per_track):
            values = np.concatenate([r[key] for r in per_track])
            results[name] = float(np.mean(values))
            results[f'{name}_std'] = float(np.std(values))
    jitters = np.array([r['jitter'] for r in per_track])
    results['Jitter'] = float(np.nanmean(jitters)) if np.any(np.isfinite(jitters)) else float('nan')
    results['sequences'] = [
        dict(subject=t['subject'], sequence=t['sequence'], n_frames=len(t['frames']),
             **{name: float(np.mean(r[key])) for name, key, _ in METRICS if key in r}, Jitter=r['jitter'])
        for t, r in zip(tracks, per_track)]
    return results


def main(argv=None):
    from posepile.paths import data_root
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pred-path', required=True)
    parser.add_argument('--emdb-root', default=None, help='default $DATA_ROOT/emdb')
    parser.add_argument('--smpl-dir', default=None, help='folder of the SMPL model files (posepile.bodymodels)')
    parser.add_argument('--all-sequences', action='store_true', help='not only the EMDB1 ones')
    parser.add_argument('--keep-pred-trans', action='store_true',
                        help='keep the predicted SMPL translation (official: zeroed; changes Jitter only)')
    parser.add_argument('--jitter-scored-joints-only', action='store_true',
                        help='average Jitter over the 15 scored joints (official: over all 24)')
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    root = Path(args.emdb_root) if args.emdb_root else data_root() / 'emdb'
    models = ModelCache(args.smpl_dir)
    tracks = ground_truth(list_sequences(root, not args.all_sequences), models)
    predictions, kind = load_npz_predictions(args.pred_path, tracks, models, args.keep_pred_trans)
    results = evaluate(tracks, predictions, args.jitter_scored_joints_only)
    variants = [f'predicted translation {"kept" if args.keep_pred_trans else "zeroed (official)"}',
                f'Jitter over {"15 scored joints" if args.jitter_scored_joints_only else "all 24 joints (official)"}']
    title = (f'EMDB {"all sequences" if args.all_sequences else "EMDB1"}: {results["n_sequences"]} sequences, '
             f'{results["n_frames"]} good frames; predictions: {kind}; {"; ".join(variants)}')
    names = [(n, u) for n, _, u in METRICS if n in results] + [('Jitter', '10 m/s^3')]
    report.print_table(title, [[results[n] for n, _ in names]], [f'{n} ({u})' for n, u in names], decimals=2)
    if args.out:
        report.write_json(args.out, results)
    return results


if __name__ == '__main__':
    import sys

    from posepile.util.errors import run_cli
    logging.basicConfig(level=logging.INFO)
    sys.exit(run_cli(main, prog=f'python -m {__spec__.name}'))
