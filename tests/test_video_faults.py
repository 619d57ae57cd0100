"""Video faults that used to end silently or behind someone else's last line (issue 27):

- a video truncated AFTER the last wanted frame: decoding stopped at that frame, before the check against
  the frame count the container promises, so the damaged file was accepted (H36M test videos: every 64th
  frame). The promise is now checked once per video, wanted frames or not (mp4 with timestamps and AVI).
- a tqdm made inside a spawned pool worker created tqdm's multiprocessing lock (a named semaphore); the
  pool terminates its workers, so the resource tracker printed "leaked semaphore objects" after our last line.
"""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from posepile.util.video import VideoReadError, iter_frames, write_video
from tests import faults
from tests.fakes import h36m as fake_h36m

REPO = Path(__file__).resolve().parent.parent
N_FRAMES = 40
WANTED = [0, 5, 10]  # all well before the truncation point


def _frames(n):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(n)]


def _write_avi(path, frames):
    import imageio.v2 as imageio
    writer = imageio.get_writer(str(path), format='FFMPEG', fps=25, codec='mpeg4', macro_block_size=2,
                                ffmpeg_log_level='error')
    for frame in frames:
        writer.append_data(frame)
    writer.close()


@pytest.mark.parametrize('suffix', ['.mp4', '.avi'])
def test_truncation_after_the_last_wanted_frame_is_reported(tmp_path, suffix):
    path = tmp_path / f'clip{suffix}'
    if suffix == '.mp4':
        write_video(path, _frames(N_FRAMES), 25)
    else:
        _write_avi(path, _frames(N_FRAMES))
    assert [i for i, _ in iter_frames(path, WANTED)] == WANTED  # the intact file
    faults.truncate(0.6)(path)
    yielded = []
    with pytest.raises(VideoReadError, match=f'of the {N_FRAMES} frames its header promises') as info:
        for index, _ in iter_frames(path, WANTED):
            yielded.append(index)
    assert yielded == WANTED  # the frames that are there still come first (extract_frames writes them)
    assert str(path) in str(info.value) and 'truncated' in str(info.value)
    assert info.value.last_good_frame >= WANTED[-1]


def test_h36m_test_video_truncated_after_its_last_test_frame(tmp_path):
    """S9 is a test subject (every 64th frame: 0 and 64 of 72); the video keeps 69 of its 72 frames, so both
    test frames decode and only the frame count its header promises shows the truncation."""
    import shutil
    prototype = tmp_path / 'prototype'
    fake_h36m.write_recipe_release(prototype / 'h36m', actions={'S9': {'Directions 1': 72}})

    def release(root):
        shutil.copytree(prototype / 'h36m', root / 'h36m')
    video = 'h36m/S9/Videos/Directions 1.54138969.mp4'
    faults.check_fault_is_reported_and_repaired('h36m', release, video, faults.truncate(0.96), tmp_path,
                                                names=['Directions 1.54138969.mp4', '69 of the 72 frames'])


def test_tqdm_in_pool_workers_leaks_no_semaphore(tmp_path):
    """The warning comes from the resource tracker at exit: run a pool whose workers make (disabled) tqdm bars
    in a fresh interpreter, a few times, and look at the last lines of its stderr."""
    script = tmp_path / 'pool.py'
    script.write_text(textwrap.dedent('''
        import sys
        from posepile.util.parallel import parallel_map

        def work(x):
            from tqdm import tqdm
            for _ in tqdm(range(2), disable=True):
                pass
            return x

        if __name__ == '__main__':
            assert parallel_map(work, range(4), n_workers=2) == [0, 1, 2, 3]
            print('posepile: error: the last line', file=sys.stderr)
            sys.exit(1)
    '''))
    for _ in range(2):
        result = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 1
        assert 'leaked' not in result.stderr and 'resource_tracker' not in result.stderr, result.stderr
        assert result.stderr.strip().splitlines()[-1] == 'posepile: error: the last line'
