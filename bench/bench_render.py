"""Speed and look of the posepile.render backends on this machine (2 CPU cores, no GPU): 512x512 renders of a
textured procedural mannequin (posepile.render.primitives, `--detail 8`: ~170k triangles, about a THuman2 scan's
size after its decimation... a real scan has 100k-1M), random views and lights as the recipes draw them.

Writes a contact sheet (one row per backend, same scenes in each column) to --sheet and prints images/s per
backend. Backends that cannot run here are reported and skipped.

    python bench/bench_render.py [--images 6] [--detail 8] [--blender-samples 16 64] [--sheet /tmp/render_sheet.png]
"""
import argparse
import logging
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=6)
    parser.add_argument('--detail', type=int, default=8)
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--blender-samples', type=int, nargs='*', default=[16, 64])
    parser.add_argument('--sheet', default='/tmp/render_sheet.png')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    import cv2

    from posepile import render
    from posepile.render import primitives
    mesh = primitives.mannequin(detail=args.detail, texture_size=512)
    print(f'mesh: {len(mesh.vertices)} vertices, {len(mesh.faces)} triangles; {args.size}x{args.size}')
    size = (args.size, args.size)
    scenes = [render.sample_scene(render.scene_seed('bench', i), mesh.vertices, size) for i in range(args.images)]
    configurations = [('numpy', {}), ('opengl', {})] + [('blender', {'samples': n}) for n in args.blender_samples]
    rows = []
    for backend, options in configurations:
        ok, reason = render.backend_available(backend)
        if not ok:
            print(f'{backend}: skipped ({reason})')
            continue
        render.render(mesh, *scenes[0], (32, 32), backend=backend, **options)  # warm-up (JIT, context)
        images, start = [], time.perf_counter()
        for camera, lights in scenes:
            images.append(render.composite(render.render(mesh, camera, lights, size, backend=backend, **options))[0])
        elapsed = time.perf_counter() - start
        label = backend + ''.join(f' {k}={v}' for k, v in options.items())
        print(f'{label}: {args.images / elapsed:.3f} images/s ({elapsed / args.images:.2f} s per image)')
        row = np.concatenate(images, axis=1)
        cv2.putText(row, label, (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
        rows.append(row)
    cv2.imwrite(args.sheet, np.concatenate(rows, axis=0)[..., ::-1])
    print(f'contact sheet: {args.sheet}')


if __name__ == '__main__':
    main()
