"""SSP-3D benchmark (311 images of sportspeople, SMPL pseudo-GT): PVE-T-SC and silhouette mIoU, as the dataset's
own metrics.py (akashsengupta1997/SSP-3D) and the STRAPS evaluation tracker (metrics/eval_metrics_tracker.py) compute
them.

Release layout (the official zip): `labels.npz` with `fnames`, `shapes` (N, 10), `poses` (N, 72), `cam_trans`
(N, 3) m, `genders` ('m' / 'f'), `joints2D`, `bbox_centres`, `bbox_whs`; `images/<fname>`, `silhouettes/<fname>`
(512 x 512). Camera: f = 5000 px, principal point (256, 256), the body X_cam = SMPL(pose, shape) + cam_trans.

- PVE-T-SC (mm): T-pose (zero pose, zero translation) vertices of the predicted and the true betas, both through
  the GROUND TRUTH's gendered SMPL (official), the prediction moved to the GT's centroid and scaled to the GT's RMS
  radius (no rotation), then the mean vertex distance over all images and vertices.
- mIoU: the predicted mesh's silhouette (here rasterized triangle by triangle with cv2, see
  posepile.eval.mesh_metrics.rasterize_silhouette; the official renders with a neural mesh renderer, which can
  differ along the outline) against `silhouettes/<fname>` (a pixel is foreground when its value rounds to
  non-zero, as the official). The STRAPS tracker reports the POOLED IoU, sum(TP) / sum(TP + FP + FN) over all
  images, not a mean of per-image IoUs.

Arguable official behaviours kept by default, each with its flag (printed in the header):
- predicted betas go through the GT's gendered model, whatever model the method used: `--pred-gender` uses the
  file's `gender` (default neutral) instead;
- "mIoU" is the pooled IoU: `--per-image-iou-mean` reports the mean of per-image IoUs.

    python -m posepile.ds.ssp3d.eval --pred-path preds.npz [--smpl-dir DIR] [--ssp3d-root DIR]

Predictions: an .npz with `image_path` (`ssp_3d/images/<fname>`, or the bare fname) for every image and
- for PVE-T-SC, either `betas` (N, 10) (optional `gender`) or `vertices_tpose_pred` (N, 6890, 3) mm;
- for mIoU (optional), `vertices3d_pred_cam` (N, 6890, 3) mm in the camera frame of the 512 x 512 image
  (projected with f = 5000, c = (256, 256)), or `vertices2d_pred` (N, 6890, 2) px.
"""
import argparse
import logging
from pathlib import Path

import numpy as np

from posepile.eval.mesh_metrics import SMPLModelCache as ModelCache
from posepile.eval import alignment, mesh_metrics, report
from posepile.eval.mesh_predictions import (PredictionError, check_pose_scale, float_array, match_rows,
                                            optional_strings, read_prediction_arrays)
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
FOCAL_PX = 5000.0
IMAGE_SIZE = 512
PRINCIPAL_POINT = (IMAGE_SIZE / 2, IMAGE_SIZE / 2)
LABEL_KEYS = ('fnames', 'shapes', 'poses', 'cam_trans', 'genders')
GENDER_NAMES = {'m': 'male', 'f': 'female', 'n': 'neutral', 'male': 'male', 'female': 'female',
                'neutral': 'neutral'}


class SSP3DFormatError(InputError):
    pass


def image_relpath(fname):
    return f'ssp_3d/images/{fname}'


def _normalize(name):
    return image_relpath(str(name).replace('\\', '/').rsplit('/', 1)[-1])


def load_labels(root):
    """dict fnames (list), shapes (N, 10), poses (N, 72), cam_trans (N, 3) m, genders (list of
    'male'/'female') from root/labels.npz."""
    path = Path(root) / 'labels.npz'
    if not path.is_file():
        raise SSP3DFormatError(f'{path}: SSP-3D labels not found (unzip the release there)')
    from posepile.util import fileio
    data = fileio.load_npz(path, SSP3DFormatError)  # a truncated / corrupt file: one line naming it
    missing = [k for k in LABEL_KEYS if k not in data]
    if missing:
        raise SSP3DFormatError(f'{path}: missing arrays {missing} (found {sorted(data.keys())})')
    labels = {k: data[k] for k in LABEL_KEYS}
    n = len(labels['fnames'])
    for key, tail in (('shapes', (10,)), ('poses', (72,)), ('cam_trans', (3,))):
        if labels[key].shape != (n,) + tail:
            raise SSP3DFormatError(f'{path}: {key} has shape {labels[key].shape}, expected {(n,) + tail}')
    genders = [str(g) for g in labels['genders']]
    bad = sorted(set(genders) - set(GENDER_NAMES))
    if bad or len(genders) != n:
        raise SSP3DFormatError(f'{path}: genders must be {n} of "m"/"f", got {bad or len(genders)}')
    return dict(fnames=[str(f) for f in labels['fnames']], shapes=labels['shapes'].astype(np.float64),
                poses=labels['poses'].astype(np.float64), cam_trans=labels['cam_trans'].astype(np.float64),
                genders=[GENDER_NAMES[g] for g in genders])


def read_silhouette(root, fname):
    """(512, 512) bool: the official silhouette PNG read as greyscale, foreground where it rounds to non-zero."""
    import cv2
    path = Path(root) / 'silhouettes' / fname
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise SSP3DFormatError(f'{path}: silhouette missing or unreadable')
    return np.round(image) != 0


def project(points_cam_mm):
    """(..., 2) px of camera-frame points with the SSP-3D camera (f = 5000, c = (256, 256))."""
    p = np.asarray(points_cam_mm, np.float64)
    return p[..., :2] / p[..., 2:3] * FOCAL_PX + np.array(PRINCIPAL_POINT)


def tpose_vertices_mm(model, betas):
    """(N, V, 3) zero-pose, zero-translation vertices in mm of betas (N, 10)."""
    betas = np.asarray(betas, np.float64)
    out = model(np.zeros((len(betas), model.n_joints * 3)), betas, None)
    return out['vertices'].astype(np.float64) * 1000




def ground_truth_tpose(labels, models):
    result = None
    for gender in sorted(set(labels['genders'])):
        idx = np.flatnonzero(np.array(labels['genders']) == gender)
        vertices = tpose_vertices_mm(models(gender), labels['shapes'][idx])
        if result is None:
            result = np.zeros((len(labels['fnames']),) + vertices.shape[1:])
        result[idx] = vertices
    return result


def ground_truth_posed_mm(labels, models):
    """(N, V, 3) camera-frame GT vertices in mm (used by tests and for visual checks)."""
    result = None
    for gender in sorted(set(labels['genders'])):
        idx = np.flatnonzero(np.array(labels['genders']) == gender)
        out = models(gender)(labels['poses'][idx], labels['shapes'][idx], labels['cam_trans'][idx])
        if result is None:
            result = np.zeros((len(labels['fnames']),) + out['vertices'].shape[1:])
        result[idx] = out['vertices'] * 1000
    return result


def load_npz_predictions(path, labels, models, use_pred_gender=False):
    """dict tpose (N, V, 3) mm in label order, vertices2d (N, V, 2) px or None, kind (str)."""
    arrays = read_prediction_arrays(path)
    expected = [image_relpath(f) for f in labels['fnames']]
    rows = match_rows(path, arrays, expected, normalize=_normalize)
    n = len(expected)
    if 'betas' in arrays:
        betas = float_array(path, arrays, 'betas', ((10, 11, 12, 13, 14, 15, 16),), rows)[:, :10]
        genders = optional_strings(path, arrays, 'gender', n, rows, allowed=tuple(GENDER_NAMES))
        genders = [GENDER_NAMES[g] for g in genders] if genders else ['neutral'] * n
        model_genders = genders if use_pred_gender else labels['genders']
        tpose = None
        for gender in sorted(set(model_genders)):
            idx = np.flatnonzero(np.array(model_genders) == gender)
            vertices = tpose_vertices_mm(models(gender), betas[idx])
            if tpose is None:
                tpose = np.zeros((n,) + vertices.shape[1:])
            tpose[idx] = vertices
        kind = 'betas through the ' + ("file's gender" if use_pred_gender else "GT's gendered model (official)")
    elif 'vertices_tpose_pred' in arrays:
        tpose = _vertices(path, arrays, 'vertices_tpose_pred', rows)
        check_pose_scale(tpose, path, unit='millimetres')
        kind = 'T-pose vertices'
    else:
        raise PredictionError(f'{path}: needs "betas" or "vertices_tpose_pred" (found {sorted(arrays)})')
    vertices2d = None
    if 'vertices2d_pred' in arrays:
        vertices2d = _vertices(path, arrays, 'vertices2d_pred', rows, dims=2)
    elif 'vertices3d_pred_cam' in arrays:
        cam = _vertices(path, arrays, 'vertices3d_pred_cam', rows)
        check_pose_scale(cam, path, unit='millimetres')
        if np.any(cam[..., 2] <= 0):
            raise PredictionError(f'{path}: "vertices3d_pred_cam" has points at or behind the camera (z <= 0)')
        vertices2d = project(cam)
    return dict(tpose=tpose, vertices2d=vertices2d, kind=kind)


def _vertices(path, arrays, key, rows, dims=3):
    values = np.asarray(arrays[key])
    if values.ndim != 3 or values.shape[-1] != dims:
        raise PredictionError(f'{path}: "{key}" must have shape (N, vertices, {dims}), got {values.shape}')
    return float_array(path, arrays, key, (values.shape[1], dims), rows)


def evaluate(labels, gt_tpose, predictions, root=None, faces=None, per_image_iou_mean=False):
    aligned = alignment.rms_scale_translation_align(predictions['tpose'], gt_tpose)
    if aligned.shape != gt_tpose.shape:
        raise PredictionError(f'predicted T-pose vertices have shape {aligned.shape[1:]}, GT {gt_tpose.shape[1:]}')
    per_image = mesh_metrics.per_frame_mean_distance(aligned, gt_tpose)
    results = {'n_images': len(gt_tpose), 'PVE-T-SC': float(np.mean(per_image)),
               'PVE-T-SC_per_image': per_image}
    if predictions['vertices2d'] is not None:
        counts = np.array([mesh_metrics.silhouette_counts(
            mesh_metrics.rasterize_silhouette(v2d, faces, IMAGE_SIZE, IMAGE_SIZE), read_silhouette(root, fname))
            for v2d, fname in zip(predictions['vertices2d'], labels['fnames'])])
        per_image_iou = mesh_metrics.iou_from_counts(*counts.T)
        results['mIoU_pooled'] = float(mesh_metrics.iou_from_counts(*counts.sum(axis=0)))
        results['mIoU_per_image_mean'] = float(np.nanmean(per_image_iou))
        results['mIoU'] = results['mIoU_per_image_mean' if per_image_iou_mean else 'mIoU_pooled']
        results['IoU_per_image'] = per_image_iou
    return results


def main(argv=None):
    from posepile.paths import data_root
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pred-path', required=True)
    parser.add_argument('--ssp3d-root', default=None, help='default $DATA_ROOT/ssp_3d')
    parser.add_argument('--smpl-dir', default=None, help='folder of the SMPL model files (posepile.bodymodels)')
    parser.add_argument('--pred-gender', action='store_true',
                        help="predicted betas through the file's gender (official: the GT's gendered model)")
    parser.add_argument('--per-image-iou-mean', action='store_true',
                        help='mIoU as the mean of per-image IoUs (official STRAPS: pooled over all pixels)')
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    root = Path(args.ssp3d_root) if args.ssp3d_root else data_root() / 'ssp_3d'
    models = ModelCache(args.smpl_dir)
    labels = load_labels(root)
    predictions = load_npz_predictions(args.pred_path, labels, models, args.pred_gender)
    faces = models(labels['genders'][0]).faces if predictions['vertices2d'] is not None else None
    results = evaluate(labels, ground_truth_tpose(labels, models), predictions, root, faces,
                       args.per_image_iou_mean)
    iou_kind = 'mean of per-image IoUs' if args.per_image_iou_mean else 'pooled IoU (official)'
    title = (f'SSP-3D: {results["n_images"]} images; predictions: {predictions["kind"]}; mIoU = {iou_kind}, '
             f'silhouettes rasterized with cv2')
    columns, row = ['PVE-T-SC (mm)'], [results['PVE-T-SC']]
    if 'mIoU' in results:
        columns.append('mIoU')
        row.append(results['mIoU'])
    report.print_table(title, [row], columns, decimals=4)
    if args.out:
        report.write_json(args.out, results)
    return results


if __name__ == '__main__':
    import sys

    from posepile.util.errors import run_cli
    logging.basicConfig(level=logging.INFO)
    sys.exit(run_cli(main, prog=f'python -m {__spec__.name}'))
