"""3DPW benchmark, the official ECCV 2020 challenge protocol (aymenmir1/3dpw-eval).

Per valid frame of each (sequence, actor) track (camera pose valid and some 2D keypoint detected): the 24
SMPL joints in camera coordinates (mm), both poses made relative to joint 0 (pelvis). MPJPE over all 24
joints; MPJPE_PA after a per-frame similarity Procrustes alignment (proper rotation); PCK = % of the 12 major
joints (hips, knees, ankles, shoulders, elbows, wrists) within <= 50 mm, root-aligned; AUC = the PCK curve
over 0..199 mm integrated over [0, 1] (a fraction, not a percentage). All frames of all tracks are pooled.

By default all three splits are scored, as the challenge evaluator does; `--test-split` scores the 24 test
sequences only (what most papers report). Ground truth comes from `jointPositions` (world, metres) moved
into the camera with `cam_poses`; `--smpl-dir DIR` instead regenerates the joints from poses/betas/trans
with the gendered SMPL models in DIR (basicModel_f_lbs_10_207_0_v1.0.0.pkl and
basicmodel_m_lbs_10_207_0_v1.0.0.pkl, else SMPL_{FEMALE,MALE}.pkl; read with posepile.bodymodels), as the
official script does.

    python -m posepile.ds.tdpw.eval --pred-path preds.npz|RESULTS_DIR [--test-split] [--smpl-dir DIR]

Predictions, either
- the official layout: a folder with `res/<split>/<sequence>.pkl` (or the `res` folder itself), each a dict
  with `jointPositions` (actors, frames, 24, 3) in metres, camera frame, for every frame of the sequence,
  and optionally `orientations` (actors, frames, 9, 3, 3): camera-frame rotations of the SMPL joints
  0, 1, 2, 4, 5, 16, 17, 18, 19 (then MPJAE and MPJAE_PA are reported too: the mean angle in degrees
  between predicted and true orientations, PA after turning the predictions by the Procrustes rotation);
- an .npz with `image_path` (`tdpw/imageFiles/<sequence>/image_%05d.jpg`), `person_index` (the actor),
  `coords3d_pred_cam` (N, 24, 3) in mm, one row per valid (frame, actor), and optionally
  `orientations_pred_cam` (N, 9, 3, 3).
"""
import argparse
import logging
import pickle
from pathlib import Path

import numpy as np

from posepile.ds.tdpw import main as tdpw
from posepile.eval import metrics, report
from posepile.eval.predictions import PredictionError, check_pose_scale, load_predictions, read_prediction_arrays

SMPL_FILES = {'f': 'basicModel_f_lbs_10_207_0_v1.0.0.pkl', 'm': 'basicmodel_m_lbs_10_207_0_v1.0.0.pkl'}


def load_gt_smpl_model(smpl_dir, gender):
    """The official evaluator's model file of `gender` ('f' or 'm') in smpl_dir, else any official SMPL file name
    of that gender there (posepile.bodymodels' search), as a posepile.bodymodels BodyModel."""
    path = Path(smpl_dir) / SMPL_FILES[gender]
    return tdpw.load_smpl_model(path if path.exists() else Path(smpl_dir), tdpw.GENDERS[gender])


def ground_truth_tracks(root, splits, smpl_dir=None):
    """List of dicts (split, sequence, actor, frames (valid indices), gt (F, 24, 3) camera mm, gt_rot
    (F, 9, 3, 3) camera-frame orientations of the 9 parts of the angle metric)."""
    models = {}
    if smpl_dir is not None:
        models = {g: load_gt_smpl_model(smpl_dir, g) for g in SMPL_FILES}
    tracks = []
    for split in splits:
        for sequence in tdpw.list_sequences(root, split):
            data = tdpw.load_sequence(Path(root) / 'sequenceFiles' / split / f'{sequence}.pkl')
            for actor in range(len(data['jointPositions'])):
                frames = np.flatnonzero(tdpw.valid_frames(data, actor))
                if smpl_dir is None:
                    gt = tdpw.joints_camera_mm(data, actor, frames)
                else:
                    gender = data['genders'][actor]
                    world = tdpw.smpl_joints(models[gender], np.asarray(data['poses'][actor])[frames],
                                             data['betas'][actor][:10], np.asarray(data['trans'][actor])[frames])
                    gt = tdpw.world_to_camera_mm(world, np.asarray(data['cam_poses'])[frames])
                camera_rotations = np.asarray(data['cam_poses'], np.float64)[frames, :3, :3]
                world_rotations = tdpw.global_rotations(np.asarray(data['poses'][actor])[frames])[:, tdpw.ANGLE_PARTS]
                gt_rot = np.matmul(camera_rotations[:, np.newaxis], world_rotations)
                tracks.append(dict(split=split, sequence=sequence, actor=actor, frames=frames, gt=gt, gt_rot=gt_rot))
    return tracks


def _official_results_dir(path):
    path = Path(path)
    return path / 'res' if (path / 'res').is_dir() else path


def load_official_predictions(results_dir, tracks):
    """Per track (F, 24, 3) camera mm from res/<split>/<sequence>.pkl files, and per track the predicted
    orientations (F, 9, 3, 3) when the files have them (else None)."""
    results_dir = _official_results_dir(results_dir)
    needed = sorted({(t['split'], t['sequence']) for t in tracks})
    missing = [f'{s}/{q}.pkl' for s, q in needed if not (results_dir / s / f'{q}.pkl').exists()]
    if missing:
        raise PredictionError(f'{results_dir}: {len(missing)} prediction files missing, e.g. {missing[:5]}')
    cache = {}
    result = []
    for track in tracks:
        key = (track['split'], track['sequence'])
        if key not in cache:
            path = results_dir / key[0] / f'{key[1]}.pkl'
            try:
                with open(path, 'rb') as f:
                    content = pickle.load(f, encoding='latin1')
                if not isinstance(content, dict) or 'jointPositions' not in content:
                    raise PredictionError(f'{path}: expected a dict with "jointPositions" (and optionally '
                                          f'"orientations")')
                orientations = content.get('orientations')
                cache[key] = (path, np.asarray(content['jointPositions'], np.float64),
                              None if orientations is None else np.asarray(orientations, np.float64))
            except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, MemoryError,
                    ValueError, TypeError) as e:  # PredictionError is a ValueError: keep its message
                if isinstance(e, PredictionError):
                    raise
                raise PredictionError(f'{path}: not a readable predictions pickle ({type(e).__name__}: {e})') \
                    from e
        path, joints, orientations = cache[key]
        if joints.ndim != 4 or joints.shape[-2:] != (24, 3) or track['actor'] >= len(joints):
            raise PredictionError(f'{path}: jointPositions must be (actors, frames, 24, 3), got {joints.shape}')
        if joints.shape[1] <= track['frames'].max(initial=-1):
            raise PredictionError(f'{path}: {joints.shape[1]} frames, but frame {track["frames"].max()} is '
                                  'evaluated (give every frame of the sequence)')
        pred = joints[track['actor'], track['frames']] * 1000
        if not np.all(np.isfinite(pred)):
            raise PredictionError(f'{path}: NaN or inf in actor {track["actor"]}')
        check_pose_scale(joints[track['actor'], track['frames']], path, unit='metres', factor_to_mm=1000)
        rot = None
        if orientations is not None:
            if orientations.shape[-3:] != (9, 3, 3) or orientations.shape[1] != joints.shape[1]:
                raise PredictionError(f'{path}: orientations must be (actors, frames, 9, 3, 3), got '
                                      f'{orientations.shape}')
            rot = orientations[track['actor'], track['frames']]
        result.append((pred, rot))
    return result


def load_npz_predictions(path, tracks):
    keys = [f'{tdpw.image_relpath(t["sequence"], int(f))}#{t["actor"]}' for t in tracks for f in t['frames']]
    data = read_prediction_arrays(path)
    if 'person_index' not in data:
        raise PredictionError(f'{path}: 3DPW predictions need a "person_index" array (the actor)')
    if 'image_path' not in data:
        raise PredictionError(f'{path}: missing array "image_path" (found {list(data)})')
    try:
        person_index = data['person_index'].astype(int).ravel().tolist()
        orientations = np.asarray(data['orientations_pred_cam'], np.float64) if 'orientations_pred_cam' in data \
            else None
    except (ValueError, TypeError) as e:
        raise PredictionError(f'{path}: cannot read "person_index" / "orientations_pred_cam" ({e})') from e
    image_paths = data['image_path'].ravel().tolist()
    if len(person_index) != len(image_paths):
        raise PredictionError(f'{path}: {len(person_index)} person_index values for {len(image_paths)} image paths')
    row_of = {f'{p}#{a}': i for i, (p, a) in enumerate(zip(image_paths, person_index))}
    counter = iter(person_index)
    predictions = load_predictions(path, keys, 24, coord_key='coords3d_pred_cam',
                                   normalize_path=lambda p: f'{p}#{next(counter)}', arrays=data)
    result, i = [], 0
    for t in tracks:
        track_keys = keys[i:i + len(t['frames'])]
        joints = np.stack([predictions[k] for k in track_keys]) if track_keys else np.zeros((0, 24, 3))
        rot = None if orientations is None else orientations[[row_of[k] for k in track_keys]].reshape(-1, 9, 3, 3)
        result.append((joints, rot))
        i += len(t['frames'])
    return result


def evaluate(tracks, predictions):
    """predictions: per track (joints (F, 24, 3) camera mm, orientations (F, 9, 3, 3) or None)."""
    gt = np.concatenate([t['gt'] for t in tracks])
    pred = np.concatenate([joints for joints, _ in predictions])
    gt_rel, pred_rel = metrics.root_relative(gt, 0), metrics.root_relative(pred, 0)
    errors = metrics.joint_distances(pred_rel, gt_rel)
    aligned, pa_rotations = metrics.procrustes_align(pred_rel, gt_rel, return_rotation=True)
    pa_errors = metrics.joint_distances(aligned, gt_rel)
    major = errors[:, tdpw.MAJOR_JOINTS]
    results = {'n_frames': len(gt), 'n_tracks': len(tracks),
               'MPJPE': float(np.mean(np.mean(errors, axis=1))),
               'MPJPE_PA': float(np.mean(np.mean(pa_errors, axis=1))),
               'PCK': float(metrics.pck(major, 50, inclusive=True)),
               'AUC': float(metrics.auc_3dpw(major))}
    if all(rot is not None for _, rot in predictions):
        # angles of the 9 parts' orientations; PA: the predicted orientations turned by the Procrustes rotation
        gt_rot = np.concatenate([t['gt_rot'] for t in tracks])
        pred_rot = np.concatenate([rot for _, rot in predictions])
        results['MPJAE'] = float(np.mean(metrics.rotation_angle_deg(pred_rot, gt_rot)))
        pred_rot_pa = np.matmul(pa_rotations[:, np.newaxis], pred_rot)
        results['MPJAE_PA'] = float(np.mean(metrics.rotation_angle_deg(pred_rot_pa, gt_rot)))
    return results


def main(argv=None):
    from posepile.paths import data_root
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pred-path', required=True, help='.npz, or a folder in the official res/ layout')
    parser.add_argument('--test-split', action='store_true', help='only the 24 test sequences')
    parser.add_argument('--smpl-dir', default=None, help='regenerate GT joints with these SMPL models')
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    splits = ('test',) if args.test_split else tdpw.SPLITS
    tracks = ground_truth_tracks(data_root() / 'tdpw', splits, args.smpl_dir)
    if Path(args.pred_path).is_dir():
        predictions = load_official_predictions(args.pred_path, tracks)
    else:
        predictions = load_npz_predictions(args.pred_path, tracks)
    results = evaluate(tracks, predictions)
    results['splits'] = list(splits)
    from posepile.ds.tdpw import mesh_eval  # MVE / PA_PVE when the .npz has meshes and --smpl-dir is given
    if args.smpl_dir and mesh_eval.has_mesh_predictions(args.pred_path):
        results.update(mesh_eval.evaluate(data_root() / 'tdpw', tracks, predictions, mesh_eval.predicted_vertices(
            args.pred_path, tracks, args.smpl_dir), {g: load_gt_smpl_model(args.smpl_dir, g) for g in SMPL_FILES}))
    title = (f'3DPW {"test split" if args.test_split else "all splits (challenge protocol)"}: '
             f'{results["n_tracks"]} tracks, {results["n_frames"]} frames, GT from '
             f'{"SMPL" if args.smpl_dir else "jointPositions"}')
    report.print_table(title, [(results['MPJPE'], results['MPJPE_PA'], results['PCK'], results['AUC'])],
                       ['MPJPE (mm)', 'MPJPE_PA (mm)', 'PCK@50 (%)', 'AUC (fraction)'], decimals=3)
    for key in ('MPJPE', 'MPJPE_PA', 'PCK', 'AUC', 'MPJAE', 'MPJAE_PA', 'MVE', 'PA_PVE'):  # scores.txt lines + mesh
        if key in results:
            print(f'{key}: {results[key]}')
    if 'MPJAE' not in results:
        print('MPJAE, MPJAE_PA: not computed (the predictions have no orientations)')
    if args.out:
        report.write_json(args.out, results)
    return results


if __name__ == '__main__':
    import sys

    from posepile.util.errors import run_cli
    logging.basicConfig(level=logging.INFO)
    sys.exit(run_cli(main, prog=f'python -m {__spec__.name}'))
