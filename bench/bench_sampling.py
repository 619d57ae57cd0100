"""Speed of adaptive frame selection (posepile.util.sampling.select_frames) in poses per second.

A realistic track: 17 joints doing a random walk with smooth velocity (mocap-like, mean speed about
1 m/s at 50 fps) with occasional still periods. Compared with a straightforward per-frame Python loop
(the reference semantics) on a subset, in the same run.

    python bench/bench_sampling.py [--frames 2000000]
"""
import argparse
import time

import numpy as np

from posepile.util.sampling import select_frames


def make_track(n_frames, n_joints=17, seed=0):
    """Mocap-like track in mm: body and limb velocities are smooth AR(1) processes (about 15 mm per frame
    per joint on average, i.e. walking at 50 fps), with still periods now and then."""
    from scipy.signal import lfilter
    rng = np.random.default_rng(seed)
    body = lfilter([1.0], [1.0, -0.98], rng.normal(0, 1.2, (n_frames, 1, 3)), axis=0)
    limbs = lfilter([1.0], [1.0, -0.9], rng.normal(0, 2.0, (n_frames, n_joints, 3)), axis=0)
    velocity = body + limbs
    still = (np.arange(n_frames) // 3000) % 7 == 3
    velocity[still] = rng.normal(0, 0.3, velocity[still].shape)  # standing: only jitter
    return np.cumsum(velocity, axis=0).astype(np.float32)


def reference_loop(poses, threshold):
    kept, last = [], None
    for i, pose in enumerate(poses):
        if last is None or np.any(np.linalg.norm(pose - last, axis=-1) >= threshold):
            kept.append(i)
            last = pose
    return np.array(kept)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--frames', type=int, default=2_000_000)
    parser.add_argument('--threshold', type=float, default=100.0)
    args = parser.parse_args()
    track = make_track(args.frames)
    speeds = np.linalg.norm(np.diff(track[:10000], axis=0), axis=-1).mean()
    print(f'track: {args.frames} frames x 17 joints, mean joint displacement {speeds:.1f} mm/frame')
    start = time.perf_counter()
    select_frames(track[:10], args.threshold)  # numba compiles (or loads its cache) on the first call
    print(f'first call (compilation or cache load): {time.perf_counter() - start:.2f} s')
    # the same track with 2 % of the joints missing (dropouts, as in marker and multi-view captures)
    gappy = track.copy()
    gappy[np.random.default_rng(1).random(gappy.shape[:2]) < 0.02] = np.nan
    settings = ({}, {'check_validity': True}, {'nan_unchanged': True},
                {'buffer_size': 100, 'check_validity': True, 'nan_unchanged': True},
                {'buffer_size': 10_000, 'check_validity': True, 'nan_unchanged': True})
    for name, poses in (('complete', track), ('2 % missing', gappy)):
        for kwargs in settings:
            frames = poses if kwargs.get('buffer_size', 1) <= 100 else poses[:args.frames // 20]
            start = time.perf_counter()
            kept = select_frames(frames, args.threshold, **kwargs)
            seconds = time.perf_counter() - start
            print(f'{name}: select_frames{kwargs or ""}: {len(frames) / seconds / 1e6:.2f} M poses/s '
                  f'({len(kept)} of {len(frames)} kept, {seconds:.2f} s)')
    subset = track[:100_000]
    start = time.perf_counter()
    expected = reference_loop(subset, args.threshold)
    loop_seconds = time.perf_counter() - start
    start = time.perf_counter()
    got = select_frames(subset, args.threshold)
    fast_seconds = time.perf_counter() - start
    assert np.array_equal(expected, got), 'fast and reference selections differ'
    print(f'per-frame python loop: {len(subset) / loop_seconds / 1e6:.3f} M poses/s; '
          f'select_frames is {loop_seconds / fast_seconds:.1f}x faster on the same 100k frames')


if __name__ == '__main__':
    main()
