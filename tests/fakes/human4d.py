"""A tiny HUMAN4D release with ROTATED colour frames (people on their side, as in the real release):

    S<k>/device_repository.json            [{'Device', 'Color Intrinsics': [{'1280x720': 9 numbers}], ...}]
    S<k>/offsets.txt                       '<timestamp>\\t<offset1>\\t<offset2>' lines
    S<k>/pose/<camera>.extrinsics          4 rows x 3: R^T (world-to-camera rotation, transposed), position mm
    S<k>/<timestamp>/Dump/color/<i>_<camera>_color_<t>.png   1280x720 PNG, dots at the projected 32 joints
    S<k>/<timestamp>/Dump/gposes3d/<n>.npy                   (1, 33, 3) float32 world joints, mm (z up)

The stored frame is the upright view turned 90 deg counter-clockwise (the upright view = stored turned 90 deg
clockwise): each camera's image x axis points DOWN in the world.
"""
import json
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 1280, 720
FOCAL = 900.0
DELETED_JOINT = 15
# subject -> {timestamp: (offset1, n_frames)}, cameras with extrinsics, cameras without
SEQUENCES = {'S1': {'19-07-12-09-09-06': (3, 12)}, 'S2': {'19-07-12-10-00-01': (1, 6)}}
CAMERAS = {'S1': ['M72h', 'M72j'], 'S2': ['M72h', 'M72e']}
UNCALIBRATED = {'S2': 'M72i'}
MISSING_POSE = ('S1', 5)  # the pose of frame 5 of S1 is not written
# a standing person, z up, mm, relative to the pelvis (33 joints in the release's order)
_SPINE = [[0, 0, 0], [0, 10, 100], [0, 15, 200], [0, 10, 300], [0, 0, 420], [0, 0, 520], [0, -10, 580],
          [0, -20, 650], [0, -20, 760], [0, 0, 470]]
_RIGHT_ARM = [[-190, 0, 460], [-230, 10, 200], [-250, 40, -30], [-265, 60, -110], [-220, 80, -80]]
_RIGHT_LEG = [[-100, 0, -40], [-110, 20, -440], [-115, 0, -840], [-115, -90, -900], [-115, -170, -905],
              [-115, -210, -900]]
TEMPLATE_MM = np.array(_SPINE + _RIGHT_ARM + [[0, 30, 380]] + [[-x, y, z] for x, y, z in _RIGHT_ARM]
                       + _RIGHT_LEG + [[-x, y, z] for x, y, z in _RIGHT_LEG], np.float64) + [0, 0, 950]


def kept_indices():
    return [i for i in range(33) if i != DELETED_JOINT]


def look_at_rotation(position, target):
    """World-to-camera rotation of a camera at `position` looking at `target`, rolled so that its image x
    axis points down in the world (stored frame = upright view turned 90 deg counter-clockwise)."""
    forward = np.asarray(target, float) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([down, -right, forward])


def camera_params(subject, camera_name):
    k = sum(map(ord, subject + camera_name))
    angle = 0.7 * k
    position = np.array([3200 * np.cos(angle), 3200 * np.sin(angle), 1100 + k % 7 * 40])
    rotation = look_at_rotation(position, [0, 0, 900 + k % 5 * 30])
    intrinsics = np.array([[FOCAL + k % 9, 0, 640 + k % 11], [0, FOCAL + k % 9, 360 - k % 13], [0, 0, 1]])
    return intrinsics, rotation, position


def project(joints_mm, intrinsics, rotation, position):
    cam = (joints_mm - position) @ rotation.T
    return cam[:, :2] / cam[:, 2:] * np.diag(intrinsics)[:2] + intrinsics[:2, 2]


def render_dots(pixels):
    canvas = np.full((HEIGHT, WIDTH), 45.0, np.float32)
    for u, v in pixels:
        x0, x1, y0, y1 = max(0, int(u) - 12), int(u) + 13, max(0, int(v) - 12), int(v) + 13
        ys, xs = np.mgrid[y0:y1, x0:x1]
        canvas[y0:y1, x0:x1] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / 8)
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def make_motion(rng, n_frames):
    """(n_frames, 33, 3): a person walking in small (< 100 mm, some frames skipped) and large steps, the
    pose of frame 10 repeating frame 9 (so natural path order matters)."""
    small, large = rng.uniform(0, 40, n_frames), rng.uniform(130, 200, n_frames)  # mm
    steps = np.where(rng.uniform(size=n_frames) < 0.4, small, large)
    steps[0] = 0
    phase = np.cumsum(steps) / 400  # along a circle of radius 400 mm (stays in view)
    offsets = 400 * np.stack([np.cos(phase), np.sin(phase), np.zeros(n_frames)], axis=1)
    frames = TEMPLATE_MM + offsets[:, None]
    if n_frames > 10:
        frames[10] = frames[9] + 3
    return frames


def write_fake_release(root, seed=0):
    """Writes the release under `root` ($DATA_ROOT/human4d). Returns {relpath of a frame: dict(subject,
    camera_name, i_frame, joints_mm (32, 3) or None when the frame has no pose, intrinsics, rotation,
    position)}."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    written = {}
    for subject, sequences in SEQUENCES.items():
        subject_dir = root / subject
        (subject_dir / 'pose').mkdir(parents=True, exist_ok=True)
        names = CAMERAS[subject] + [UNCALIBRATED[subject]] if subject in UNCALIBRATED else CAMERAS[subject]
        devices = []
        for name in names:
            intrinsics, rotation, position = camera_params(subject, name)
            devices.append({'Device': name, 'Serial': f'00{len(devices)}', 'Depth Intrinsics': [
                {'640x480': [1, 0, 0, 0, 1, 0, 0, 0, 1]}], 'Color Intrinsics': [
                {'640x360': (intrinsics * [[0.5], [0.5], [1]]).reshape(-1).tolist()},
                {'1280x720': intrinsics.reshape(-1).tolist()}]})
            if name in CAMERAS[subject]:
                np.savetxt(subject_dir / 'pose' / f'{name}.extrinsics', np.concatenate([rotation.T, [position]]))
        (subject_dir / 'device_repository.json').write_text(json.dumps(devices, indent=1))
        lines = []
        for timestamp, (offset1, n_frames) in sequences.items():
            lines.append(f'{timestamp}\t{offset1}\t{offset1 + 7}')
            _write_sequence(rng, subject_dir / timestamp / 'Dump', subject, names, offset1, n_frames, written, root)
        (subject_dir / 'offsets.txt').write_text('\n'.join(lines) + '\n')
    return written


def _write_sequence(rng, dump_dir, subject, camera_names, offset1, n_frames, written, root):
    (dump_dir / 'color').mkdir(parents=True, exist_ok=True)
    (dump_dir / 'gposes3d').mkdir(parents=True, exist_ok=True)
    motion = make_motion(rng, n_frames)
    delta = offset1 - 1
    for i_frame in range(n_frames):
        i_pose = i_frame - delta
        has_pose = i_pose >= 0 and (subject, i_frame) != MISSING_POSE
        if has_pose:
            np.save(dump_dir / 'gposes3d' / f'{i_pose}.npy', motion[i_frame][np.newaxis].astype(np.float32))
        for name in camera_names:
            intrinsics, rotation, position = camera_params(subject, name)
            joints = motion[i_frame][kept_indices()]
            path = dump_dir / 'color' / f'{i_frame}_{name}_color_{1000 + 33 * i_frame}.png'
            cv2.imwrite(str(path), render_dots(project(joints, intrinsics, rotation, position)),
                        [cv2.IMWRITE_PNG_COMPRESSION, 1])
            written[path.relative_to(root).as_posix()] = dict(
                subject=subject, camera_name=name, i_frame=i_frame, joints_mm=joints if has_pose else None,
                intrinsics=intrinsics, rotation=rotation, position=position)
