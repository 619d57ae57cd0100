"""A tiny MPI-INF-3DHP test set in the real layout: TS{1..6}/annot_data.mat as MATLAB v7.3 (HDF5 with the
512-byte MATLAB user block) holding annot2, annot3, univ_annot3 (N, 1, 17, 2|3), valid_frame (N, 1),
activity_annotation (N, 1); plus test_util/camera_calibration/ts1-4cameras.calib and ts5-6cameras.calib
in the "tc camera calibration v0.3" text format."""
from pathlib import Path

import numpy as np

CALIB_TEMPLATE = """tc camera calibration v0.3
camera\t0\tcam_8
\tframe\t0
\t\tsensorSize\t{sw}\t{sh}\t# in mm
\t\tfocalLength\t{f}\t# in mm
\t\tpixelAspect\t1.00044
\t\tcenterOffset\t-0.0322884\t0.0929296\t# in mm (positive values move right and down)
\t\tdistortionModel\tOpenCV
\t\tdistortion\t\t{dist}
\t\t\torigin\t{origin}
\t\t\tup\t-0.208215\t0.976233\t0.06014
\t\t\tright\t0.000575281\t0.0616098\t-0.9981
"""


def _write_v73_mat(path, arrays):
    import h5py
    with h5py.File(path, 'w', userblock_size=512) as f:
        for name, value in arrays.items():
            f.create_dataset(name, data=value)
    header = b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 .'
    with open(path, 'r+b') as f:
        f.write(header.ljust(116, b' ') + b'\x00' * 8 + b'\x00\x02IM')


def write_fake_release(root, seed=0, n_frames=(12, 9, 10, 8, 7, 11)):
    """Returns {sequence: dict(annot3, univ_annot3, valid_frame, activity)} as written."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    written = {}
    for i, n in enumerate(n_frames):
        sequence = f'TS{i + 1}'
        univ = rng.normal(0, 300, (n, 17, 3)) + [0, 0, 4000]
        metric = univ * rng.uniform(0.9, 1.1)
        valid = rng.random(n) > 0.2
        valid[0] = True
        activity = rng.integers(1, 8, n)
        annot2 = rng.uniform(0, 2048, (n, 17, 2))
        (root / sequence).mkdir(parents=True, exist_ok=True)
        _write_v73_mat(root / sequence / 'annot_data.mat', {
            'annot2': annot2[:, np.newaxis].astype(np.float32),
            'annot3': metric[:, np.newaxis].astype(np.float32),
            'univ_annot3': univ[:, np.newaxis].astype(np.float32),
            'valid_frame': valid[:, np.newaxis].astype(np.float64),
            'activity_annotation': activity[:, np.newaxis].astype(np.float64)})
        written[sequence] = dict(annot3=metric.astype(np.float32).astype(np.float64),
                                 univ_annot3=univ.astype(np.float32).astype(np.float64), valid_frame=valid,
                                 activity=activity)
    calib_dir = root / 'test_util' / 'camera_calibration'
    calib_dir.mkdir(parents=True, exist_ok=True)
    (calib_dir / 'ts1-4cameras.calib').write_text(CALIB_TEMPLATE.format(
        sw=10, sh=10, f=7.32506, dist='0.0 0.0 0.0 0.0 0.0', origin='3427.28\t1387.86\t309.42'))
    (calib_dir / 'ts5-6cameras.calib').write_text(CALIB_TEMPLATE.format(
        sw=10, sh=5.625, f=8.770747, dist='-0.2769 0.1311 -0.00036 -0.00115 -0.0493',
        origin='-2000.0\t1600.0\t2500.0'))
    return written
