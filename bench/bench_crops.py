"""Crops per second: posepile's make_efficient_example vs a naive pipeline and vs the JPEG codec alone.

Inputs: 1000x1000 JPEG frames (quality 95, textured content) from a camera with lens distortion, person
boxes of 150-900 px height at varied positions (as in multi-view mocap and close-up datasets).
- ours:  make_efficient_example (region-limited, DCT-reduced decode when shrinking >= 2x, gamma-correct
         2x supersampled cubic warp, exact distortion via grid-interpolated maps, JPEG q95 encode)
- naive: full-resolution decode, exact per-pixel maps, full-image float conversion, remap, encode
         (same output geometry and quality settings)
- codec: decode at the same reduced scale + encode of an output-sized image (the I/O floor)

    python bench/bench_crops.py [--n 60]
"""
import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from posepile.datasets3d import Pose3DExample
from posepile.preproc import cropping
from posepile.util import improc
from posepile.util.camera import Camera, get_reprojection_maps


def make_inputs(root, n, seed=0):
    rng = np.random.default_rng(seed)
    camera = Camera(intrinsic_matrix=[[1000, 0, 499.5], [0, 1000, 499.5], [0, 0, 1]],
                    distortion_coeffs=[-0.2, 0.06, 0.001, -0.001, 0], world_up=(0, -1, 0))
    examples = []
    for i in range(n):
        small = rng.integers(0, 255, (125, 125, 3), dtype=np.uint8)
        image = cv2.resize(small, (1000, 1000), interpolation=cv2.INTER_CUBIC)
        cv2.putText(image, f'{i}', (100, 500), cv2.FONT_HERSHEY_SIMPLEX, 8, (255, 255, 255), 20)
        path = Path(root) / f'frames/{i:04d}.jpg'
        improc.write_jpeg_atomic(path, image, 95)
        height = rng.uniform(150, 900)
        width = height * rng.uniform(0.35, 0.6)
        x = rng.uniform(0, 1000 - width)
        y = rng.uniform(0, 1000 - height)
        examples.append(Pose3DExample(str(path.relative_to(root)), np.zeros((17, 3)), [x, y, width, height],
                                      camera))
    return examples


def naive_crop(example, root, out_path):
    image = cv2.cvtColor(cv2.imread(str(Path(root) / example.image_path)), cv2.COLOR_BGR2RGB)
    new_camera, _, shape = cropping.plan_crop(example.camera, example.bbox, image.shape)
    linear = (image.astype(np.float32) / 255) ** 2.2
    big_camera = new_camera.copy().scale_output(2)
    map_x, map_y = get_reprojection_maps(example.camera, big_camera, (shape[0] * 2, shape[1] * 2), grid_step=1)
    big = cv2.remap(linear, map_x, map_y, cv2.INTER_CUBIC)
    small = cv2.resize(big, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    out = (np.clip(small, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)
    cv2.imwrite(str(out_path), cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])


def codec_only(example, root, out_path):
    imshape = improc.image_size_from_header(Path(root) / example.image_path)
    new_camera, _, shape = cropping.plan_crop(example.camera, example.bbox, imshape)
    scale = new_camera.intrinsic_matrix[0, 0] / example.camera.intrinsic_matrix[0, 0]
    image = improc.imread_rgb(Path(root) / example.image_path, improc.choose_decode_scale(scale))
    # encode real image content of the output's size (a flat image would encode unrealistically fast)
    reps = (-(-shape[0] // image.shape[0]), -(-shape[1] // image.shape[1]), 1)
    out = np.ascontiguousarray(np.tile(image, reps)[:shape[0], :shape[1]])
    improc.write_jpeg_atomic(out_path, out, 95)


def timed(fn, examples, root, tag):
    start = time.perf_counter()
    for i, example in enumerate(examples):
        fn(example, root, Path(root) / f'{tag}/{i:04d}.jpg')
    return len(examples) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--n', type=int, default=60)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as root:
        examples = make_inputs(root, args.n)
        for tag in ('naive', 'codec', 'ours'):
            (Path(root) / tag).mkdir()

        def ours(example, root_, out_path):
            cropping.make_efficient_example(example, Path(out_path).relative_to(root_), data_root=root_,
                                            skip_existing=False)

        for fn, tag in ((ours, 'ours'), (naive_crop, 'naive'), (codec_only, 'codec')):
            fn(examples[0], root, Path(root) / tag / 'warmup.jpg')
        rates = {tag: timed(fn, examples, root, tag)
                 for fn, tag in ((ours, 'ours'), (naive_crop, 'naive'), (codec_only, 'codec'))}
    print(f'{args.n} crops of 1000x1000 JPEGs, single thread:')
    for tag, rate in rates.items():
        print(f'  {tag:6s} {rate:7.1f} crops/s')
    print(f'ours vs naive: {rates["ours"] / rates["naive"]:.2f}x faster (target >= 3x)')
    print(f'ours vs codec limit: {rates["codec"] / rates["ours"]:.2f}x the time of decode-at-scale + encode '
          f'(target <= 1.5x)')


if __name__ == '__main__':
    main()
