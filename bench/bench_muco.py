"""MuCo-3DHP compositing throughput on one core: composites/s (each = 4 warped layers, masks, occlusion, and
the person crops written as JPEG), on a fake 3DHP training release at the real frame size (2048 x 2048).

    python bench/bench_muco.py [--size 2048] [--composites 40]

Setup (not timed): four subjects of one camera are written as videos with FGmasks, run through the tdhp
select-frames / masks / video stages (one camera only), then `composite_stage` runs with one worker and
OMP_NUM_THREADS=1. Reported: composites/s and crops/s of the timed stage.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ['OMP_NUM_THREADS'] = '1'
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--size', type=int, default=2048)
    parser.add_argument('--frames', type=int, default=15)
    parser.add_argument('--composites', type=int, default=40)
    parser.add_argument('--profile', action='store_true', help='print the top cProfile entries of the timed stage')
    args = parser.parse_args()
    import cv2
    cv2.setNumThreads(1)
    from posepile.ds.muco import main as muco
    from posepile.ds.tdhp import main as tdhp
    from posepile.preproc import pipeline
    from tests.fakes import muco as fake
    from tests.fakes import tdhp as fake_tdhp
    with tempfile.TemporaryDirectory() as tmp:
        data_root = Path(tmp)
        os.environ['DATA_ROOT'] = str(data_root)
        for i, subject in enumerate(fake.SUBJECTS):
            fake_tdhp.write_train_sequence(
                data_root / 'tdhp', subject=subject, n_frames=args.frames, size=(args.size, args.size), seed=i,
                cameras=(0,), body_level=fake.BODY_LEVELS[subject], start_x=fake.START_X_MM[subject],
                chairs=subject in fake.CHAIR_SUBJECTS)
        tdhp.TRAIN_CAMERAS = (0,)  # only camera 0 was written
        tdhp.select_frames_stage(data_root)
        tdhp.mask_stage(n_workers=1, data_root=data_root)
        pipeline.dataset_video_stage('tdhp', tdhp.make_video_tasks(data_root, cameras=(0,)), None, 1, data_root,
                                     subdir='crops_train')
        muco._worker_candidates(str(data_root))
        import cProfile
        import pstats
        profiler = cProfile.Profile()
        start = time.perf_counter()
        if args.profile:
            profiler.enable()
        muco.composite_stage(n_workers=1, count=args.composites, chunk_size=args.composites, data_root=data_root)
        elapsed = time.perf_counter() - start
        if args.profile:
            profiler.disable()
            pstats.Stats(profiler).sort_stats('tottime').print_stats(15)
        examples, _ = muco.load_results(data_root)
        print(f'frame size {args.size}x{args.size}, canvas scale {muco.CANVAS_SCALE}: {args.composites} composites, '
              f'{len(examples)} crops in {elapsed:.1f} s on 1 core: {args.composites / elapsed:.2f} composites/s, '
              f'{len(examples) / elapsed:.2f} crops/s')


if __name__ == '__main__':
    main()
