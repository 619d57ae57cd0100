"""EHF benchmark (SMPL-X paper: 100 frames, one camera, SMPL-X alignment meshes `NN_align.ply` as pseudo-GT), with
the metrics of the whole-body evaluators in common use (Hand4Whole / OSX / SMPLer-X `EHF.evaluate`, the protocol
the original PosePile's eval2.py follows).

Per frame, on SMPL-X meshes (10475 vertices) in the camera frame, in mm:
- MPVPE all / hands / face: vertex errors after translating the prediction so that its pelvis / wrist (per hand)
  / neck equals the GT's; these joints are the SMPL-X J_regressor (neutral model) rows 0 / 20, 21 / 12 applied
  to each mesh's vertices;
- PA-MPVPE all / hands / face: after a similarity Procrustes fitted on the same vertices (each hand separately);
- PA-MPJPE body: the 14 joints of the SMPL-X->J14 regressor (`SMPLX_to_J14.pkl`), Procrustes-aligned;
- PA-MPJPE hands: per hand 21 joints (wrist and 15 finger joints from J_regressor, 5 fingertip vertices),
  Procrustes-aligned per hand.
Hand figures are the mean of the left and right hand's; every figure is the mean over frames. Hand vertices come
from `MANO_SMPLX_vertex_ids.pkl` ('left_hand', 'right_hand'), face vertices from `SMPL-X__FLAME_vertex_ids.npy`.
The official evaluators rotate the GT by the camera rotation only (no translation); every metric here is
translation-invariant, so the full world-to-camera transform from `EHF_camera.txt` is used.

    python -m posepile.ds.ehf.eval --pred-path preds.npz --smplx-dir DIR [--ehf-root DIR]

DIR holds the SMPL-X neutral model (SMPLX_NEUTRAL.npz, for J_regressor) and the three files above (the user
fetches them from the SMPL-X / ExPose downloads; a missing one is named in a one-line error).

Predictions: an .npz with `image_path` (`ehf/EHF/NN_img.jpg`, or the bare `NN_img.jpg`) for all frames and
`vertices3d_pred_cam` (N, 10475, 3) in mm, camera frame.
"""
import argparse
import logging
import re
from pathlib import Path

import numpy as np

from posepile.eval import alignment, mesh_metrics, report
from posepile.eval.predictions import load_predictions, read_prediction_arrays
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
N_VERTICES = 10475
PELVIS, NECK, LEFT_WRIST, RIGHT_WRIST = 0, 12, 20, 21
# 21 hand joints: wrist, then thumb, index, middle, ring, pinky (3 J_regressor joints + the tip vertex each)
HAND_JOINT_ROWS = {
    'left': [(20,), (37, 38, 39), 5361, (25, 26, 27), 4933, (28, 29, 30), 5058, (34, 35, 36), 5169,
             (31, 32, 33), 5286],
    'right': [(21,), (52, 53, 54), 8079, (40, 41, 42), 7669, (43, 44, 45), 7794, (49, 50, 51), 7905,
              (46, 47, 48), 8022]}
ASSET_FILES = {'j14': 'SMPLX_to_J14.pkl', 'hands': 'MANO_SMPLX_vertex_ids.pkl',
               'face': 'SMPL-X__FLAME_vertex_ids.npy'}


class EHFFormatError(InputError):
    pass


def image_relpath(frame_name):
    return f'ehf/EHF/{frame_name}_img.jpg'


def _normalize(name):
    base = str(name).replace('\\', '/').rsplit('/', 1)[-1]
    return f'ehf/EHF/{base}'


def read_camera(path):
    """dict focal (2,), principal_point (2,), distortion (5,), R (3, 3) world to camera, t (3,) metres from
    EHF_camera.txt (X_cam = R X + t, R = Rodrigues of the file's rotation vector)."""
    import cv2
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise EHFFormatError(f'{path}: camera file missing or unreadable ({e})') from e
    sections = {}
    for header, body in re.findall(r'###\s*([A-Za-z ]+?)\s*-[^\n]*\n(.*?)(?=###|\Z)', text, re.S):
        sections[header.strip().lower()] = np.array([float(x) for x in re.findall(r'[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?',
                                                                                   body)])
    wanted = {'focal length': 2, 'principal point': 2, 'translation': 3, 'rotation': 3}
    for name, size in wanted.items():
        if name not in sections or len(sections[name]) != size:
            raise EHFFormatError(f'{path}: no "{name}" section with {size} numbers')
    R, _ = cv2.Rodrigues(sections['rotation'])
    return dict(focal=sections['focal length'], principal_point=sections['principal point'],
                distortion=sections.get('distortion coefficients', np.zeros(5)), R=R, t=sections['translation'])


def project(points_cam, camera):
    p = np.asarray(points_cam, np.float64)
    return p[..., :2] / p[..., 2:3] * camera['focal'] + camera['principal_point']


def read_ply_vertices(path):
    """(V, 3) float64 vertex positions of a PLY mesh (the EHF alignment meshes: binary little-endian, 10475 float32
    vertices, metres), read by posepile.bodymodels.fitting.read_ply_vertices; a one-line EHFFormatError naming
    the file when it is missing, not a PLY, truncated or has unsupported vertex properties."""
    from posepile.bodymodels import BodyModelFormatError
    from posepile.bodymodels.fitting import read_ply_vertices as read_vertices
    try:
        return read_vertices(path)
    except BodyModelFormatError as e:
        raise EHFFormatError(str(e)) from None


def list_frames(root):
    names = sorted(p.name[:-len('_align.ply')] for p in Path(root).glob('*_align.ply') if not p.name.startswith('._'))
    if not names:
        raise EHFFormatError(f'{root}: no NN_align.ply files (is this the EHF folder?)')
    return names


def ground_truth(root):
    """(frame names, GT vertices (N, 10475, 3) camera mm, camera dict)."""
    root = Path(root)
    camera = read_camera(root / 'EHF_camera.txt')
    names = list_frames(root)
    vertices = []
    for name in names:
        v = read_ply_vertices(root / f'{name}_align.ply')
        if v.shape != (N_VERTICES, 3):
            raise EHFFormatError(f'{root / f"{name}_align.ply"}: {len(v)} vertices, SMPL-X has {N_VERTICES}')
        vertices.append((v @ camera['R'].T + camera['t']) * 1000)
    return names, np.stack(vertices), camera


def load_assets(smplx_dir):
    """dict J_regressor (55, 10475), j14 (14, 10475), hand_regressors {'left', 'right': (21, 10475)},
    hand_vertices {'left', 'right': ids}, face_vertices ids, from the user's SMPL-X folder."""
    from posepile import bodymodels
    from posepile.bodymodels import loading
    folder = Path(smplx_dir)
    paths = {}
    for key, name in ASSET_FILES.items():
        found = [p for p in (folder / name, folder / 'smplx' / name) if p.is_file()]
        if not found:
            raise EHFFormatError(f'{folder / name}: missing (EHF needs {", ".join(ASSET_FILES.values())} and the '
                                 'SMPL-X neutral model in --smplx-dir; they come with the SMPL-X / ExPose downloads)')
        paths[key] = found[0]
    J_regressor = bodymodels.load('smplx', 'neutral', folder).J_regressor
    try:
        with open(paths['j14'], 'rb') as f:
            j14 = loading.to_dense(loading.restricted_load(f)).astype(np.float64)
        with open(paths['hands'], 'rb') as f:
            hands = loading.restricted_load(f)
        hand_vertices = {side: np.asarray(loading.to_dense(hands[f'{side}_hand']), np.int64).ravel()
                         for side in ('left', 'right')}
        face_vertices = np.asarray(np.load(paths['face']), np.int64).ravel()
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        raise EHFFormatError(f'{folder}: cannot read the EHF vertex-id / regressor files ({type(e).__name__}: {e})') \
            from e
    n_vertices = J_regressor.shape[1]
    if j14.shape != (14, n_vertices):
        raise EHFFormatError(f'{paths["j14"]}: shape {j14.shape}, expected (14, {n_vertices})')
    for ids, path in ((hand_vertices['left'], paths['hands']), (hand_vertices['right'], paths['hands']),
                      (face_vertices, paths['face'])):
        if ids.size == 0 or ids.min() < 0 or ids.max() >= n_vertices:
            raise EHFFormatError(f'{path}: vertex ids outside 0..{n_vertices - 1}')
    eye = np.eye(n_vertices)
    hand_regressors = {side: np.concatenate([J_regressor[list(item)] if isinstance(item, tuple) else eye[[item]]
                                             for item in rows]) for side, rows in HAND_JOINT_ROWS.items()}
    return dict(J_regressor=J_regressor, j14=j14, hand_regressors=hand_regressors, hand_vertices=hand_vertices,
                face_vertices=face_vertices)


def _regress(regressor, vertices):
    return np.einsum('jv,nvc->njc', regressor, vertices)


def evaluate(gt, pred, assets):
    """Per-frame metrics (dict of (N,) arrays, mm) of GT and predicted vertices (N, V, 3) mm."""
    J = assets['J_regressor']
    gt_joints, pred_joints = _regress(J, gt), _regress(J, pred)

    def translated(ids, joint):
        shift = gt_joints[:, joint] - pred_joints[:, joint]
        return pred[:, ids] + shift[:, np.newaxis], gt[:, ids]

    all_ids = slice(None)
    result = {'PA-MPVPE all': mesh_metrics.procrustes_errors(pred, gt),
              'MPVPE all': mesh_metrics.per_frame_mean_distance(*translated(all_ids, PELVIS))}
    pa_hand, hand = [], []
    for side, wrist in (('left', LEFT_WRIST), ('right', RIGHT_WRIST)):
        ids = assets['hand_vertices'][side]
        pa_hand.append(mesh_metrics.procrustes_errors(pred[:, ids], gt[:, ids]))
        hand.append(mesh_metrics.per_frame_mean_distance(*translated(ids, wrist)))
    result['PA-MPVPE hands'] = (pa_hand[0] + pa_hand[1]) / 2
    result['MPVPE hands'] = (hand[0] + hand[1]) / 2
    face = assets['face_vertices']
    result['PA-MPVPE face'] = mesh_metrics.procrustes_errors(pred[:, face], gt[:, face])
    result['MPVPE face'] = mesh_metrics.per_frame_mean_distance(*translated(face, NECK))
    result['PA-MPJPE body'] = mesh_metrics.procrustes_errors(_regress(assets['j14'], pred),
                                                             _regress(assets['j14'], gt))
    hands = [mesh_metrics.procrustes_errors(_regress(assets['hand_regressors'][s], pred),
                                            _regress(assets['hand_regressors'][s], gt)) for s in ('left', 'right')]
    result['PA-MPJPE hands'] = (hands[0] + hands[1]) / 2
    return result


COLUMNS = ('MPVPE all', 'MPVPE hands', 'MPVPE face', 'PA-MPVPE all', 'PA-MPVPE hands', 'PA-MPVPE face',
           'PA-MPJPE body', 'PA-MPJPE hands')


def main(argv=None):
    from posepile.paths import data_root
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pred-path', required=True)
    parser.add_argument('--smplx-dir', required=True,
                        help='SMPL-X neutral model, SMPLX_to_J14.pkl, MANO_SMPLX_vertex_ids.pkl, '
                             'SMPL-X__FLAME_vertex_ids.npy')
    parser.add_argument('--ehf-root', default=None, help='the folder of NN_align.ply files, default $DATA_ROOT/ehf/EHF')
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    root = Path(args.ehf_root) if args.ehf_root else data_root() / 'ehf' / 'EHF'
    arrays = read_prediction_arrays(args.pred_path)  # a damaged file is refused before the slow model load
    assets = load_assets(args.smplx_dir)
    names, gt, _ = ground_truth(root)
    expected = [image_relpath(n) for n in names]
    predictions = load_predictions(args.pred_path, expected, gt.shape[1], normalize_path=_normalize,
                                   coord_key='vertices3d_pred_cam', arrays=arrays)
    pred = np.stack([predictions[k] for k in expected])
    per_frame = evaluate(gt, pred, assets)
    results = {'n_frames': len(names), **{k: float(np.mean(v)) for k, v in per_frame.items()}}
    report.print_table(f'EHF: {len(names)} frames, SMPL-X vertices in the camera frame (mm)',
                       [[results[c] for c in COLUMNS]], list(COLUMNS), decimals=2)
    if args.out:
        report.write_json(args.out, {**results, 'per_frame': {k: v for k, v in per_frame.items()},
                                     'frames': names})
    return results


if __name__ == '__main__':
    import sys

    from posepile.util.errors import run_cli
    logging.basicConfig(level=logging.INFO)
    sys.exit(run_cli(main, prog=f'python -m {__spec__.name}'))
