"""One-pass video crops vs the extract-then-crop path, on a 1000x1000 H.264 clip with every 5th frame selected.

Measured in the same run, one worker each:
- throughput: crops per second from the video file to finished crop JPEGs (the old path includes writing and
  re-reading the q95 full frames);
- bytes written to disk per crop (crops, result files, and for the old path the full frames);
- crop fidelity: PSNR of each path's crops against crops rendered from the decoded frames without any JPEG
  step in between (the same camera geometry and resampling), in dB.

    python bench/bench_video_crops.py [--frames 300] [--size 1000]
"""
import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from posepile.datasets3d import Pose3DExample
from posepile.preproc.cropping import plan_crop, render_crop
from posepile.preproc.pipeline import run_crop_stage
from posepile.preproc.video_stage import PersonTask, VideoTask, run_video_stage
from posepile.util import improc
from posepile.util.camera import Camera
from posepile.util.video import extract_frames, iter_frames, write_video


def make_clip(path, n_frames, size, seed=0):
    """A textured scene panning slowly, with a bright figure walking across (natural-image-like statistics:
    smooth gradients plus fine texture, so that both JPEG and H.264 have real work to do)."""
    import cv2
    rng = np.random.default_rng(seed)
    coarse = cv2.resize((rng.random((size // 16, size // 16 + 8, 3)) * 255).astype(np.uint8),
                        (size + 128, size), interpolation=cv2.INTER_CUBIC)
    fine = rng.normal(0, 12, (size, size + 128, 3))
    background = np.clip(coarse + fine, 0, 255).astype(np.uint8)

    def frames():
        for i in range(n_frames):
            frame = background[:, i % 128:i % 128 + size].copy()
            cx = int(size * (0.2 + 0.6 * i / max(1, n_frames - 1)))
            cv2.ellipse(frame, (cx, size // 2), (size // 12, size // 4), 0, 0, 360, (230, 200, 170), -1)
            cv2.circle(frame, (cx, size // 2 - size // 3), size // 20, (240, 210, 180), -1)
            yield frame
    write_video(path, frames(), fps=25, quality=8)


def person_box(frame_index, n_frames, size):
    cx = size * (0.2 + 0.6 * frame_index / max(1, n_frames - 1))
    return np.array([cx - size / 10, size * 0.12, size / 5, size * 0.66])


def make_examples(n_frames, size, step):
    camera = Camera(intrinsic_matrix=[[size * 0.9, 0, (size - 1) / 2], [0, size * 0.9, (size - 1) / 2], [0, 0, 1]],
                    distortion_coeffs=[-0.08, 0.02, 0, 0, 0], world_up=(0, -1, 0))
    joints = np.zeros((17, 3), np.float32) + [0, 0, 4000]
    return camera, {f: Pose3DExample(f'bench/frames/frame_{f:06d}.jpg', joints, person_box(f, n_frames, size),
                                     camera) for f in range(0, n_frames, step)}


def pipe_extract(video, out_dir, wanted):
    """Selected frames as q95 JPEGs through imageio's ffmpeg pipe (every frame converted and piped)."""
    import imageio.v2 as imageio
    reader = imageio.get_reader(str(video), format='FFMPEG')
    try:
        for i, frame in enumerate(reader):
            if i in wanted:
                improc.write_jpeg_atomic(Path(out_dir) / f'frame_{i:06d}.jpg', frame, 95)
            if i >= max(wanted):
                break
    finally:
        reader.close()


def disk_bytes(folder):
    return sum(p.stat().st_size for p in Path(folder).rglob('*') if p.is_file())


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / mse)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--size', type=int, default=1000)
    parser.add_argument('--step', type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix='bench_video_'))
    try:
        video = work / 'clip.mp4'
        make_clip(video, args.frames, args.size)
        camera, examples = make_examples(args.frames, args.size, args.step)
        n = len(examples)
        print(f'clip: {args.frames} frames {args.size}x{args.size} H.264 ({video.stat().st_size / 1e6:.1f} MB), '
              f'{n} selected (every {args.step}th)')

        one_pass_root = work / 'one_pass'
        task = VideoTask('clip', str(video), {f: [PersonTask(f'{f:06d}', ex, f'bench_downscaled/{f:06d}.jpg')]
                                              for f, ex in examples.items()})
        start = time.perf_counter()
        run_video_stage([task], one_pass_root / 'work', data_root=one_pass_root, n_workers=1)
        one_pass_s = time.perf_counter() - start

        old_root = work / 'extract_then_crop'
        start = time.perf_counter()
        extract_frames(video, old_root / 'bench' / 'frames', sorted(examples))
        tasks = [(f'{f:06d}', ex, f'bench_downscaled/{f:06d}.jpg') for f, ex in examples.items()]
        run_crop_stage(tasks, old_root / 'work', n_workers=1, data_root=old_root)
        old_s = time.perf_counter() - start

        # the extraction as it was before this stage existed: an ffmpeg pipe converting every frame to RGB
        pipe_root = work / 'pipe_extract_then_crop'
        start = time.perf_counter()
        pipe_extract(video, pipe_root / 'bench' / 'frames', set(examples))
        run_crop_stage(tasks, pipe_root / 'work', n_workers=1, data_root=pipe_root)
        pipe_s = time.perf_counter() - start

        psnr_one, psnr_old = [], []
        for f, frame in iter_frames(video, sorted(examples)):
            new_camera, _, shape = plan_crop(camera, examples[f].bbox, frame.shape)
            reference = render_crop(frame, camera, new_camera, shape)
            psnr_one.append(psnr(improc.imread_rgb(one_pass_root / f'bench_downscaled/{f:06d}.jpg'), reference))
            psnr_old.append(psnr(improc.imread_rgb(old_root / f'bench_downscaled/{f:06d}.jpg'), reference))
        bytes_one, bytes_old = disk_bytes(one_pass_root) / n, disk_bytes(old_root) / n
        print(f'one pass:          {n / one_pass_s:6.2f} crops/s, {bytes_one / 1e3:7.1f} kB written per crop, '
              f'PSNR {np.mean(psnr_one):.2f} dB')
        print(f'extract then crop: {n / old_s:6.2f} crops/s, {bytes_old / 1e3:7.1f} kB written per crop, '
              f'PSNR {np.mean(psnr_old):.2f} dB')
        print(f'extract then crop, ffmpeg pipe decoder (the previous implementation): {n / pipe_s:6.2f} crops/s')
        print(f'ratios: throughput {old_s / one_pass_s:.2f}x (same decoder), {pipe_s / one_pass_s:.2f}x (vs the '
              f'previous pipe extraction), bytes written {bytes_one / bytes_old:.3f}, '
              f'PSNR {np.mean(psnr_one) - np.mean(psnr_old):+.2f} dB')
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
