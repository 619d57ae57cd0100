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


def _index_pattern_frames(n, shape=(64, 192)):
    """Frame i carries i as 10 bits, one 16x16 block per bit (bright = 1), robust to lossy coding."""
    frames = []
    for i in range(n):
        frame = np.full((*shape, 3), 30, np.uint8)
        for bit in range(10):
            if (i >> bit) & 1:
                frame[24:40, 16 * bit + 8:16 * bit + 24] = 225
        frames.append(frame)
    return frames


def _read_index(frame):
    return sum(1 << bit for bit in range(10) if frame[32, 16 * bit + 16].mean() > 128)


def _encode(path, frames, pts_ms, options):
    """H.264 written with PyAV; pts_ms None: constant 25 fps, else explicit timestamps in ms."""
    import fractions

    import av
    with av.open(str(path), 'w') as container:
        stream = container.add_stream('libx264', rate=25, options=options)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = 'yuv420p'
        if pts_ms is not None:
            stream.codec_context.time_base = stream.time_base = fractions.Fraction(1, 1000)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format='rgb24')
            frame.pts = i if pts_ms is None else int(pts_ms[i])
            if pts_ms is not None:
                frame.time_base = stream.time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize('kind', ['mp4 B-frames', 'mkv B-frames', 'mkv B-frames variable frame rate'])
def test_frame_index_is_decode_order_with_b_frames_and_variable_frame_rate(tmp_path, kind):
    import av
    n = 90
    frames = _index_pattern_frames(n)
    durations_ms = np.random.default_rng(0).choice([10, 40, 120], n)
    pts_ms = np.concatenate([[0], np.cumsum(durations_ms)[:-1]]) if 'variable' in kind else None
    path = tmp_path / f'v.{kind[:3]}'
    _encode(path, frames, pts_ms, {'bf': '3', 'g': '15', 'crf': '18'})
    with av.open(str(path)) as c:  # the encoder really used B-frames
        assert 3 in {int(f.pict_type) for f in c.decode(c.streams.video[0])}  # AV_PICTURE_TYPE_B
    decoded = list(video.iter_frames(path))
    assert [i for i, _ in decoded] == list(range(n))
    assert [_read_index(f) for _, f in decoded] == list(range(n))
    wanted = [0, 7, 8, 44, 89]
    assert [(i, _read_index(f)) for i, f in video.iter_frames(path, wanted)] == [(i, i) for i in wanted]
    assert video.count_frames(path) == n


def test_video_read_error_crosses_process_boundaries():
    import pickle
    error = video.VideoReadError('/data/a.mp4', 41, 'Invalid data found')
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.last_good_frame == 41 and copy.path == '/data/a.mp4'


def test_avi_with_b_frames_is_indexed_by_decode_count(tmp_path):
    """AVI has no presentation timestamps (its packet 'pts' count in decode order): frames are counted."""
    import av
    n = 40
    frames = _index_pattern_frames(n)
    with av.open(str(tmp_path / 'v.avi'), 'w') as container:
        stream = container.add_stream('libx264', rate=25, options={'bf': '3', 'g': '12', 'crf': '18'})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], 'yuv420p'
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format='rgb24')
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    wanted = [0, 3, 7, 13, 39]
    assert [(i, _read_index(f)) for i, f in video.iter_frames(tmp_path / 'v.avi', wanted)] == [(i, i) for i in wanted]
