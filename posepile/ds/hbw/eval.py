"""HBW (Human Bodies in the Wild, SHAPY): the test ground truth is private, so this module WRITES the official
submission file (and checks one) instead of scoring.

Official format (muelea/shapy regressor/hbw_evaluation: README_HBW_EVAL.md, test_submission_format.py): an .npz
with `image_name` (1631,) — the names of `hbw_testset_image_names.npy`, e.g.
'test/001_noLab_22/Pictures_in_the_Wild/01329.png' — and `v_shaped` (1631, 10475, 3) (SMPL-X; (1631, 6890, 3) for
SMPL): the predicted body in the zero pose with only the shape blend shapes applied, in METRES (the server's
evaluate_hbw.py compares it to the GT v_shaped after centring both, and reports V2V and P2P-20K errors x 1000 mm).

    python -m posepile.ds.hbw.eval --pred-path preds.npz --out hbw_submission.npz [--image-names FILE]
                                   [--model-type smplx|smpl] [--model-dir DIR]
    python -m posepile.ds.hbw.eval --check hbw_submission.npz [--image-names FILE]

Predictions: an .npz with `image_path` (the test names, optionally prefixed, e.g. 'hbw/images/test/...'), and
either `vertices_tpose_pred` (N, V, 3) in mm (v_shaped: zero pose, shape only) or `betas` (N, b) (then v_shaped is
computed with the neutral model of --model-type from posepile.bodymodels, in the zero pose).
"""
import argparse
import logging
from pathlib import Path

import numpy as np

from posepile.eval.mesh_predictions import PredictionError, check_pose_scale, float_array, match_rows
from posepile.eval.predictions import read_prediction_arrays
from posepile.util.errors import InputError
from posepile.util.fileio import atomic_write

logger = logging.getLogger(__name__)
N_TEST_IMAGES = 1631
N_VERTICES = {'smplx': 10475, 'smpl': 6890}


class HBWFormatError(InputError):
    pass


def normalize_name(name):
    """'.../test/<subject>/Pictures_in_the_Wild/<n>.png' -> 'test/<subject>/Pictures_in_the_Wild/<n>.png'."""
    name = str(name).replace('\\', '/')
    for split in ('test/', 'val/'):
        if name.startswith(split):
            return name
        if f'/{split}' in name:
            return split + name.split(f'/{split}', 1)[1]
    return name


def read_image_names(path):
    """The official test list (1631 unique names) as a list of str."""
    path = Path(path)
    if not path.is_file():
        raise HBWFormatError(f'{path}: HBW test image list not found (hbw_testset_image_names.npy of the SHAPY '
                             'toolkit, regressor/hbw_evaluation/)')
    try:
        names = [str(n) for n in np.load(path, allow_pickle=False).ravel()]
    except (OSError, ValueError) as e:
        raise HBWFormatError(f'{path}: not a readable .npy array of image names ({e})') from e
    if len(set(names)) != len(names):
        raise HBWFormatError(f'{path}: duplicate image names')
    return names


def v_shaped_from_betas(betas, model_type, model_dir=None):
    """(N, V, 3) metres: the neutral model's zero-pose vertices with the shape blend shapes of betas (N, b)."""
    from posepile import bodymodels
    model = bodymodels.load(model_type, 'neutral', model_dir)
    betas = np.asarray(betas, np.float64)
    return model(np.zeros((len(betas), model.n_joints * 3)), betas, None)['vertices'].astype(np.float64)


def submission_arrays(pred_path, names, model_type='smplx', model_dir=None, n_vertices=None):
    """(image_name (N,), v_shaped (N, V, 3) float32 metres) in the order of `names`, from a predictions .npz."""
    n_vertices = N_VERTICES[model_type] if n_vertices is None else n_vertices
    arrays = read_prediction_arrays(pred_path)
    rows = match_rows(pred_path, arrays, names, normalize=normalize_name)
    if 'vertices_tpose_pred' in arrays:
        vertices_mm = float_array(pred_path, arrays, 'vertices_tpose_pred', (n_vertices, 3), rows, unit='mm')
        check_pose_scale(vertices_mm, pred_path, names)
        v_shaped = vertices_mm / 1000
    elif 'betas' in arrays:
        betas = float_array(pred_path, arrays, 'betas', (tuple(range(1, 301)),), rows)
        v_shaped = v_shaped_from_betas(betas, model_type, model_dir)
        if v_shaped.shape[1] != n_vertices:
            raise PredictionError(f'{pred_path}: the {model_type} model has {v_shaped.shape[1]} vertices, the '
                                  f'submission needs {n_vertices}')
    else:
        raise PredictionError(f'{pred_path}: needs "vertices_tpose_pred" (mm) or "betas" (found {sorted(arrays)})')
    return np.array(names), v_shaped.astype(np.float32)


def check_submission(path, names, model_type=None):
    """Raise PredictionError unless `path` passes the official format test (keys, shapes, every test name
    present) and its meshes are in metres. model_type None accepts SMPL-X or SMPL vertex counts."""
    arrays = read_prediction_arrays(path)
    missing = [k for k in ('image_name', 'v_shaped') if k not in arrays]
    if missing:
        raise PredictionError(f'{path}: keys must be image_name and v_shaped, missing {missing} '
                              f'(found {sorted(arrays)})')
    image_names = np.asarray(arrays['image_name'])
    v_shaped = np.asarray(arrays['v_shaped'])
    if image_names.shape != (len(names),):
        raise PredictionError(f'{path}: image_name has shape {image_names.shape}, expected ({len(names)},)')
    counts = [N_VERTICES[model_type]] if model_type else list(N_VERTICES.values())
    if v_shaped.ndim != 3 or v_shaped.shape[0] != len(names) or v_shaped.shape[1] not in counts or \
            v_shaped.shape[2] != 3:
        raise PredictionError(f'{path}: v_shaped has shape {v_shaped.shape}, expected ({len(names)}, '
                              f'{" or ".join(map(str, counts))}, 3)')
    match_rows(path, arrays, names, key='image_name')
    check_pose_scale(v_shaped, path, [str(n) for n in image_names], unit='metres', factor_to_mm=1000)


def write_submission(path, image_names, v_shaped):
    with atomic_write(path, 'wb') as f:
        np.savez(f, image_name=image_names, v_shaped=v_shaped)


def main(argv=None):
    from posepile.paths import data_root
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument('--pred-path', help='predictions .npz to convert')
    group.add_argument('--check', help='an existing submission .npz to check')
    parser.add_argument('--out', help='the submission .npz to write (with --pred-path)')
    parser.add_argument('--image-names', default=None,
                        help='hbw_testset_image_names.npy, default $DATA_ROOT/hbw/hbw_testset_image_names.npy')
    parser.add_argument('--model-type', choices=sorted(N_VERTICES), default='smplx')
    parser.add_argument('--model-dir', default=None, help='body model folder (only for betas predictions)')
    args = parser.parse_args(argv)
    names = read_image_names(args.image_names or data_root() / 'hbw' / 'hbw_testset_image_names.npy')
    if len(names) != N_TEST_IMAGES:
        logger.warning('%s: %d image names, the official test list has %d', args.image_names, len(names),
                       N_TEST_IMAGES)
    if args.check:
        check_submission(args.check, names)
        print(f'{args.check}: passes the HBW submission format ({len(names)} images)')
        return 0
    if not args.out:
        parser.error('--out is required with --pred-path')
    image_names, v_shaped = submission_arrays(args.pred_path, names, args.model_type, args.model_dir)
    write_submission(args.out, image_names, v_shaped)
    check_submission(args.out, names, args.model_type)
    print(f'{args.out}: HBW submission with {len(image_names)} {args.model_type} v_shaped meshes (metres)')
    return 0


if __name__ == '__main__':
    import sys

    from posepile.util.errors import run_cli
    logging.basicConfig(level=logging.INFO)
    sys.exit(run_cli(main, prog=f'python -m {__spec__.name}'))
