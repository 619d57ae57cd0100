"""Frames from videos, written as JPEG files that line up with annotation rows.

Index base: frame index 0 is the FIRST decoded frame of the video (every frame the decoder returns counts,
in presentation order). Annotation row i of a dataset whose annotations start with the video therefore
matches `frame_{i:06d}.jpg`. Datasets whose annotations are offset say so in their own module.
"""
import logging
from pathlib import Path

import numpy as np

from posepile.util import improc
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)

FRAME_NAME_PATTERN = 'frame_{:06d}.jpg'


class VideoReadError(InputError):
    """A video could not be (fully) decoded. `last_good_frame` is the last index decoded, or -1."""

    def __init__(self, path, last_good_frame, reason):
        self.path = str(path)
        self.last_good_frame = last_good_frame
        self.reason = str(reason)
        super().__init__(f'{path}: video decoding failed after frame {last_good_frame} '
                         f'(0-based; frames up to it are good): {_short_reason(reason)}')

    def __reduce__(self):  # crosses process pools intact (the default would call __init__(message))
        return type(self), (self.path, self.last_good_frame, self.reason)


def _short_reason(reason):
    """First line of an ffmpeg error plus its last meaningful lines (not the whole build banner)."""
    lines = [line.strip() for line in str(reason).splitlines() if line.strip()]
    if len(lines) <= 3:
        return ' | '.join(lines)
    tail = [line for line in lines if 'rror' in line or 'not found' in line or 'nvalid' in line][-2:]
    return ' | '.join([lines[0]] + tail)


# Containers whose packets carry true presentation timestamps (composition offsets for B-frames). AVI does
# not: its "pts" are decode-order counters, so frames there are always counted as they come.
_CONTAINERS_WITH_PTS = ('mov', 'mp4', 'matroska', 'webm')


def _demux_summary(video_path):
    """(pts index, number of packets) from one demux pass over the video stream (no decoding).

    The pts index is {pts: 0-based presentation index} of the stream's packets, or None when the container
    has no true presentation timestamps (AVI), some packet has none, or two share one (then frames are
    counted as they come). The packet count is what the file really holds, to compare with the frame count
    its header promises (a truncated file holds fewer)."""
    import av
    with av.open(str(video_path)) as container:
        with_pts = any(name in container.format.name.split(',') for name in _CONTAINERS_WITH_PTS)
        stream = container.streams.video[0]
        pts = [packet.pts for packet in container.demux(stream) if packet.size]
    if not with_pts or not pts or any(p is None for p in pts) or len(set(pts)) != len(pts):
        return None, len(pts)
    return {p: i for i, p in enumerate(sorted(pts))}, len(pts)


def _presentation_index(video_path):
    """{pts: 0-based presentation index} of the video stream's packets, or None (see _demux_summary)."""
    return _demux_summary(video_path)[0]


def iter_frames(video_path, wanted=None):
    """Yield (index, RGB uint8 frame) in presentation order, 0-based: index i is the i-th frame the decoder
    returns, whatever the container's timestamps say (variable frame rate, B-frames and edit lists do not
    shift, drop or duplicate frames).

    wanted: optional iterable of indices; only those frames are converted to RGB, decoding stops after the
    last one, and frames that nothing depends on (non-reference frames) are not decoded at all unless wanted
    (about 17% less decoding for x264 streams; the index then comes from the frame's rank among the
    stream's timestamps, found by a demux pass, which is the same number). Decoded with PyAV (libav
    in-process; about 1.5-2.5x the throughput of an ffmpeg pipe that converts every frame).

    Raises FileNotFoundError for a missing file and VideoReadError naming the file and the last good frame
    when the container cannot be opened, decoding fails, a wanted frame lies beyond the end, or the file
    holds fewer frames than its header promises (a truncated file). That promise is checked once per video
    whether or not the truncation lies beyond the last wanted frame: with `wanted`, by the demux pass (the
    packets the file holds), else by the frames decoded; the error comes after the wanted frames that are
    there were yielded. A frame is only yielded once the decoder has moved past it, so the possibly
    damaged last frame of a truncated stream is never yielded.
    """
    import av
    video_path = Path(video_path)
    if not video_path.exists():
        raise FileNotFoundError(f'video not found: {video_path}')
    wanted_set = None if wanted is None else set(int(i) for i in wanted)
    last_wanted = None if wanted_set is None else max(wanted_set, default=-1)
    if last_wanted == -1:
        return
    try:
        pts_index, n_packets = _demux_summary(video_path) if wanted_set is not None else (None, None)
        container = av.open(str(video_path))
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as e:
        raise VideoReadError(video_path, -1, e) from e
    with container:
        if not container.streams.video:
            raise VideoReadError(video_path, -1, 'the file has no video stream')
        stream = container.streams.video[0]
        stream.thread_type = 'AUTO'
        promised = int(stream.frames or 0)  # 0 when the container does not say
        remaining = None if wanted_set is None else set(wanted_set)
        pending = None  # (index, frame) decoded but not yet yielded
        index = -1
        try:
            for frame in _decode(container, stream, pts_index, wanted_set):
                index = pts_index[frame.pts] if pts_index is not None else index + 1
                if pending is not None:
                    yield pending
                    pending = None
                if remaining is not None and not remaining:
                    break  # every wanted frame was yielded; the file's completeness is checked below
                if wanted_set is None or index in wanted_set:
                    pending = (index, frame.to_ndarray(format='rgb24'))
                    if remaining is not None:
                        remaining.discard(index)
        except (av.error.FFmpegError, OSError, ValueError, KeyError) as e:
            raise VideoReadError(video_path, index - 1, e) from e
        n_seen = n_packets if n_packets is not None else index + 1
        truncated = bool(promised) and n_seen < promised
        note = f' (it ends after {n_seen} of the {promised} frames its header promises)' if truncated else ''
        if remaining:
            raise VideoReadError(video_path, index - 1 if truncated else index,
                                 f'the video ended before wanted frame {min(remaining)}{note}')
        if truncated:
            raise VideoReadError(video_path, index - 1, f'the stream ends early{note}: truncated file?')
        if pending is not None:
            yield pending


def _decode(container, stream, pts_index, wanted_set):
    """Decoded frames in presentation order; with a pts index, unwanted non-reference frames are skipped."""
    if pts_index is None:
        yield from container.decode(stream)
        return
    context = stream.codec_context
    for packet in container.demux(stream):
        if packet.pts is not None:
            context.skip_frame = 'DEFAULT' if pts_index.get(packet.pts) in wanted_set else 'NONREF'
        yield from packet.decode()


def header_frame_count(video_path):
    """Frames the video's header promises (counted by decoding when the container does not say)."""
    import av
    video_path = Path(video_path)
    if not video_path.exists():
        raise FileNotFoundError(f'video not found: {video_path}')
    try:
        with av.open(str(video_path)) as container:
            n = int(container.streams.video[0].frames or 0)
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as e:
        raise VideoReadError(video_path, -1, e) from e
    return n if n > 0 else count_frames(video_path)


def count_frames(video_path):
    """Number of decodable frames (decodes the whole stream: exact, not the container's estimate)."""
    import av
    video_path = Path(video_path)
    if not video_path.exists():
        raise FileNotFoundError(f'video not found: {video_path}')
    n = 0
    try:
        with av.open(str(video_path)) as container:
            for _ in container.decode(container.streams.video[0]):
                n += 1
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as e:
        raise VideoReadError(video_path, n - 1, e) from e
    return n


def extract_frames(video_path, out_dir, frame_indices=None, every_nth=1, quality=95,
                   name_pattern=FRAME_NAME_PATTERN, expected_n_frames=None, progress=False, transform=None):
    """Write chosen frames of `video_path` as JPEGs into `out_dir`; return the list of written indices.

    frame_indices: iterable of 0-based indices to keep (else every `every_nth` frame, starting at 0).
    Existing readable files are kept (resumable); decoding stops after the last wanted frame. Each file is
    written atomically, so an interrupted run never leaves a truncated JPEG under a final name.
    A video that ends early or breaks raises VideoReadError naming the file and the last good frame,
    after everything decodable up to there was written. With expected_n_frames, a video that ends
    cleanly but has fewer frames than that also raises VideoReadError. `transform` (e.g. a horizontal
    mirror) is applied to each frame before writing.
    """
    out_dir = Path(out_dir)
    wanted = None if frame_indices is None else sorted(set(int(i) for i in frame_indices))
    wanted_set = None if wanted is None else set(wanted)

    def is_wanted(i):
        return (i in wanted_set) if wanted_set is not None else (i % every_nth == 0)

    if wanted is not None and all(improc.is_readable_image(out_dir / name_pattern.format(i)) for i in wanted):
        return wanted
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    last_decoded = -1
    if wanted is None and every_nth > 1:
        wanted_frames = None  # unknown length: filter below
    else:
        wanted_frames = wanted
    frames = iter_frames(video_path, wanted_frames)
    if progress:
        from tqdm import tqdm
        frames = tqdm(frames, desc=Path(video_path).name, total=len(wanted) if wanted else expected_n_frames,
                      mininterval=2)
    for index, frame in frames:
        last_decoded = index
        if not is_wanted(index):
            continue
        path = out_dir / name_pattern.format(index)
        if not improc.is_readable_image(path):
            improc.write_jpeg_atomic(path, frame if transform is None else transform(frame), quality)
        written.append(index)
    if expected_n_frames is not None and wanted is None and last_decoded + 1 < expected_n_frames:
        raise VideoReadError(video_path, last_decoded,
                             f'expected {expected_n_frames} frames, the video has {last_decoded + 1}')
    return written


def write_video(path, frames, fps, quality=8):
    """Encode RGB uint8 frames to an H.264 mp4 (atomically: temp name, then rename)."""
    import imageio.v2 as imageio
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + '.partial' + path.suffix)
    writer = imageio.get_writer(str(tmp), format='FFMPEG', fps=fps, codec='libx264', quality=quality,
                                macro_block_size=2, ffmpeg_log_level='error',
                                output_params=['-pix_fmt', 'yuv420p', '-movflags', '+faststart'])
    try:
        for frame in frames:
            writer.append_data(np.asarray(frame))
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    tmp.replace(path)
