"""3DPW mesh metrics beside the challenge's skeleton metrics (posepile.ds.tdpw.eval): MVE (a.k.a. PVE) and PA-PVE.

The challenge evaluator has no mesh metric; these follow the convention of the EMDB evaluator (derived from the
3DPW one): per valid frame, the GT mesh is the gendered SMPL of the sequence's poses / betas / trans moved into
the camera (needs --smpl-dir), both meshes are made relative to their own skeleton's joint 0 (the root the
challenge's MPJPE uses), MVE is the mean vertex distance; PA-PVE moves the predicted vertices by the similarity
transform fitted on the 24 root-relative JOINTS (the MPJPE_PA transform), not by a vertex fit. Pooled over all
frames of all tracks, in mm.

Predicted meshes come from the same .npz as the joints (rows matched the same way): `vertices3d_pred_cam`
(N, 6890, 3) mm, or SMPL parameters `pose_pred_cam` (N, 72) and `betas_pred` (N, 10) run through the NEUTRAL
SMPL model of --smpl-dir (no translation is needed: everything is root-relative).
"""
from pathlib import Path

import numpy as np

from posepile.ds.tdpw import main as tdpw
from posepile.eval import alignment, mesh_metrics
from posepile.eval.mesh_predictions import check_pose_scale, float_array, read_prediction_arrays

VERTEX_KEY, POSE_KEY, BETAS_KEY = 'vertices3d_pred_cam', 'pose_pred_cam', 'betas_pred'


def has_mesh_predictions(path):
    if Path(path).is_dir():
        return False
    arrays = read_prediction_arrays(path)
    return VERTEX_KEY in arrays or POSE_KEY in arrays


def predicted_vertices(path, tracks, smpl_dir):
    """Per track (F, V, 3) camera mm from the .npz at `path`, rows matched by image_path and person_index."""
    arrays = read_prediction_arrays(path)
    row_of = {f'{p}#{int(a)}': i for i, (p, a) in enumerate(zip(np.asarray(arrays['image_path']).ravel(),
                                                                 np.asarray(arrays['person_index']).ravel()))}
    rows = np.array([row_of[f'{tdpw.image_relpath(t["sequence"], int(f))}#{t["actor"]}']
                     for t in tracks for f in t['frames']], np.int64)
    if VERTEX_KEY in arrays:
        n_vertices = np.asarray(arrays[VERTEX_KEY]).shape[1] if np.ndim(arrays[VERTEX_KEY]) == 3 else 6890
        vertices = float_array(path, arrays, VERTEX_KEY, (n_vertices, 3), rows, unit='mm')
        check_pose_scale(vertices, path)
    else:
        model = tdpw.load_smpl_model(Path(smpl_dir), 'neutral')
        pose = float_array(path, arrays, POSE_KEY, (72,), rows)
        betas = float_array(path, arrays, BETAS_KEY, ((10, 11, 12, 13, 14, 15, 16),), rows)[:, :10]
        vertices = np.concatenate([model(pose[i:i + 256], betas[i:i + 256])['vertices'].astype(np.float64) * 1000
                                   for i in range(0, len(pose), 256)]) if len(pose) else np.zeros((0, 6890, 3))
    result, start = [], 0
    for t in tracks:
        result.append(vertices[start:start + len(t['frames'])])
        start += len(t['frames'])
    return result


def gt_vertices(root, track, models):
    """(F, 6890, 3) camera mm of one track's gendered SMPL fit."""
    data = tdpw.load_sequence(Path(root) / 'sequenceFiles' / track['split'] / f'{track["sequence"]}.pkl')
    actor, frames = track['actor'], track['frames']
    model = models[data['genders'][actor]]
    out = model(np.asarray(data['poses'][actor], np.float64)[frames],
                np.asarray(data['betas'][actor], np.float64).reshape(-1)[:10],
                np.asarray(data['trans'][actor], np.float64)[frames])
    return tdpw.world_to_camera_mm(out['vertices'].astype(np.float64), np.asarray(data['cam_poses'])[frames])


def evaluate(root, tracks, joint_predictions, vertex_predictions, models):
    """{'MVE': mm, 'PA_PVE': mm} pooled over all frames. joint_predictions: per track (joints, rot) as
    posepile.ds.tdpw.eval loads them."""
    errors, pa_errors = [], []
    for track, (joints, _), pred_vertices in zip(tracks, joint_predictions, vertex_predictions):
        if not len(track['frames']):
            continue
        gt_v = gt_vertices(root, track, models)
        if gt_v.shape != pred_vertices.shape:
            raise ValueError(f'predicted meshes have {pred_vertices.shape[1]} vertices, the GT {gt_v.shape[1]}')
        gt_root, pred_root = track['gt'][:, 0], joints[:, 0]
        gt_rel_v, pred_rel_v = alignment.subtract_root(gt_v, gt_root), alignment.subtract_root(pred_vertices,
                                                                                                pred_root)
        s, R, t = alignment.fit_similarity(alignment.subtract_root(joints, pred_root),
                                           alignment.subtract_root(track['gt'], gt_root))
        errors.append(mesh_metrics.per_frame_mean_distance(pred_rel_v, gt_rel_v))
        pa_errors.append(mesh_metrics.per_frame_mean_distance(alignment.apply_similarity(pred_rel_v, s, R, t),
                                                              gt_rel_v))
    return {'MVE': float(np.mean(np.concatenate(errors))), 'PA_PVE': float(np.mean(np.concatenate(pa_errors)))}
