"""Vertex-fitting accuracy and speed: posepile.bodymodels.fitter's Gauss-Newton fitter vs smplfitter (optional) on
an SMPL-sized toy body (tests/fakes/dfaust.py: the real 24-joint tree, 7344 vertices, person-shaped, blended
skinning, pose blend shapes) with 128 betas, as DFAUST's fit uses. The targets are the toy model's own vertices
for random upright poses (root any yaw, joints N(0, 0.25) rad), so the exact answer has zero error.

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/bench_fitter.py [--frames 16] [--betas 128]

'gauss-newton-half' fits every 2nd vertex (DFAUST's setting). Prints per backend and iteration count: vertex
error mean / max (mm, over all frames and vertices), worst joint
error (mm) and seconds per fit (one core).
"""
import argparse
import tempfile
from pathlib import Path

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=16)
    parser.add_argument('--betas', type=int, default=128)
    parser.add_argument('--batch', type=int, default=4)
    args = parser.parse_args()
    from posepile.bodymodels import load
    from posepile.bodymodels.fitter import fit_vertices
    from tests.fakes import dfaust as fake
    folder = Path(tempfile.mkdtemp())
    fake.write_toy_body(folder, 'female', seed=3, n_shape=args.betas, n_lat=16, n_lon=17)
    model = load('smpl', 'female', folder)
    rng = np.random.default_rng(1)
    pose, betas, trans = fake.random_parameters(rng, args.frames, args.betas)
    betas = np.tile(betas * 0.5, (args.frames, 1)) + rng.normal(0, 0.5, (args.frames, args.betas))
    target = model(pose, betas, trans)['vertices']
    true_joints = model(pose, betas, trans, return_vertices=False)['joints']
    print(f'{model.n_vertices} vertices, {args.betas} betas, {args.frames} fits')
    runs = [('gauss-newton-half', 3), ('gauss-newton', 1), ('gauss-newton', 2), ('gauss-newton', 3), ('smplfitter', 1),
            ('smplfitter', 4)]
    for backend, iterations in runs:
        errors, joint_errors, seconds = [], [], 0.0
        try:
            for start in range(0, args.frames, args.batch):
                part = slice(start, start + args.batch)
                subset = np.arange(0, model.n_vertices, 2) if backend.endswith('-half') else None
                result = fit_vertices(model, target[part], args.betas, n_iterations=iterations,
                                      backend=backend.replace('-half', ''), vertex_subset=subset)
                seconds += result['seconds']
                errors.append(result['vertex_error_m'])
                joints = model(result['pose'], result['betas'], result['trans'], return_vertices=False)['joints']
                joint_errors.append(np.linalg.norm(joints * result['scale'][:, None, None] - true_joints[part],
                                                   axis=-1))
        except ImportError as e:
            print(f'{backend}: {e}')
            continue
        errors, joint_errors = np.concatenate(errors) * 1000, np.concatenate(joint_errors) * 1000
        print(f'{backend:13s} {iterations} it: vertex error mean {errors.mean():8.4f} mm, max {errors.max():8.3f} mm;'
              f' joints max {joint_errors.max():8.3f} mm; {seconds / args.frames:6.3f} s per fit')


if __name__ == '__main__':
    main()
