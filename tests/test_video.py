import numpy as np
import pytest

from posepile.util import improc, video


def _frames(n, shape=(48, 64)):
    """Frame i has a white bar of width 2*i px, so the index can be read back from the pixels."""
    frames = []
    for i in range(n):
        frame = np.full((*shape, 3), 40, np.uint8)
        frame[:, :2 * i] = 230
        frames.append(frame)
    return frames


def _index_from_pixels(image):
    return int(round(np.sum(image[image.shape[0] // 2, :, 1] > 135) / 2))


def test_extract_every_nth_and_index_base(tmp_path):
    video.write_video(tmp_path / 'v.mp4', _frames(25), fps=25)
    written = video.extract_frames(tmp_path / 'v.mp4', tmp_path / 'out', every_nth=4)
    assert written == [0, 4, 8, 12, 16, 20, 24]
    for i in written:  # file frame_{i}.jpg holds the i-th decoded frame (0-based)
        assert _index_from_pixels(improc.imread_rgb(tmp_path / 'out' / f'frame_{i:06d}.jpg')) == i
    assert video.count_frames(tmp_path / 'v.mp4') == 25


def test_extract_chosen_indices_resumes(tmp_path):
    video.write_video(tmp_path / 'v.mp4', _frames(20), fps=25)
    out = tmp_path / 'out'
    assert video.extract_frames(tmp_path / 'v.mp4', out, frame_indices=[3, 17, 9]) == [3, 9, 17]
    mtime = (out / 'frame_000009.jpg').stat().st_mtime_ns
    (out / 'frame_000017.jpg').unlink()
    video.extract_frames(tmp_path / 'v.mp4', out, frame_indices=[3, 17, 9])
    assert (out / 'frame_000009.jpg').stat().st_mtime_ns == mtime
    assert _index_from_pixels(improc.imread_rgb(out / 'frame_000017.jpg')) == 17


def test_truncated_video_keeps_frames_and_names_last_good(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(40)]
    video.write_video(tmp_path / 'v.mp4', frames, fps=25)
    data = (tmp_path / 'v.mp4').read_bytes()
    (tmp_path / 'cut.mp4').write_bytes(data[:int(len(data) * 0.6)])
    with pytest.raises(video.VideoReadError) as info:
        video.extract_frames(tmp_path / 'cut.mp4', tmp_path / 'out', expected_n_frames=40)
    last = info.value.last_good_frame
    assert 0 < last < 39
    assert 'cut.mp4' in str(info.value) and f'after frame {last}' in str(info.value)
    kept = sorted((tmp_path / 'out').glob('frame_*.jpg'))
    assert len(kept) == last + 1
    with pytest.raises(video.VideoReadError, match='ended before wanted frame 39'):
        video.extract_frames(tmp_path / 'cut.mp4', tmp_path / 'out2', frame_indices=[1, 39])


def test_unreadable_and_missing_videos(tmp_path):
    (tmp_path / 'junk.mp4').write_bytes(b'\x00' * 1000)
    with pytest.raises(video.VideoReadError, match='junk.mp4'):
        video.extract_frames(tmp_path / 'junk.mp4', tmp_path / 'out')
    with pytest.raises(FileNotFoundError, match='nothere.mp4'):
        video.extract_frames(tmp_path / 'nothere.mp4', tmp_path / 'out')
