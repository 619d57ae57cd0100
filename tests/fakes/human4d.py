"""A tiny HUMAN4D release with ROTATED colour frames (people on their side, as in the real release):

    S<k>/device_repository.json            the real layout (a RealSense device repository of the same lab and
                                           capture software, realdata/human4d/_same_devices_not_human4d): per
                                           device 'Device', 'Type', 'Serial', 'Firmware', 'Date', 'Color
                                           Intrinsics' [{'1280x720'}, {'1920x1080'}, {'640x480'}] (entry 0 is
                                           1280x720, as the toolkit's and the original's [0]['1280x720'] read),
                                           'Depth Intrinsics' [{'1280x720'}, {'640x480'}], 'Color Depth Rotation'
                                           (9, row-major), 'Color Depth Translation' (3, metres)
    S<k>/offsets.txt                       '<timestamp>\\t<offset1>\\t<offset2>' lines
    S<k>/pose/<camera>.extrinsics          4 rows x 3: the DEPTH sensor's pose, rows 1-3 = its camera-to-world
                                           rotation (= R_depth^T), row 4 = its position (mm)
    S<k>/<timestamp>/Dump/color/<i>_<camera>_color_<t>.png   1280x720 PNG, dots at the 32 joints as the COLOUR
                                           sensor sees them (official toolkit, h4d_rgbd_visualization_from_3d.py:
                                           X_color = R^-1 (X_depth - t), t x 1000 mm, colour intrinsics)
    S<k>/<timestamp>/Dump/gposes3d/<n>.npy                   (1, 33, 3) float32 world joints, mm (z up); colour
                                           frame i has pose n = i - offset1 (the toolkit's rule)

The stored frame is the upright view turned 90 deg counter-clockwise (the upright view = stored turned 90 deg
clockwise): each camera's image x axis points DOWN in the world. The fake's colour-depth rotation (0.6 deg) is
larger than the real ones (~0.3 deg) so that taking the depth sensor's pose for the colour camera misplaces the
joints by several px.
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


def _axis_angle_rotation(axis, angle_rad):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * cross + (1 - np.cos(angle_rad)) * cross @ cross


def camera_params(subject, camera_name):
    """dict: depth sensor pose (depth_rotation world->depth, depth_position mm), the colour-depth calibration
    (color_depth_rotation, color_depth_translation_m), the intrinsics, and the resulting colour camera
    (rotation world->colour, position mm, intrinsics = colour)."""
    k = sum(map(ord, subject + camera_name))
    angle = 0.7 * k
    depth_position = np.array([3200 * np.cos(angle), 3200 * np.sin(angle), 1100 + k % 7 * 40])
    depth_rotation = look_at_rotation(depth_position, [0, 0, 900 + k % 5 * 30])
    color_intrinsics = np.array([[FOCAL + k % 9, 0, 640 + k % 11], [0, FOCAL + k % 9, 360 - k % 13], [0, 0, 1]])
    depth_intrinsics = color_intrinsics + [[9, 0, 14], [0, 9, 10], [0, 0, 0]]
    color_depth_rotation = _axis_angle_rotation([0.3, 1, 0.2 + k % 3 * 0.1], np.deg2rad(0.6))
    color_depth_translation_m = np.array([-0.0147, 0.0004, -0.0003])
    # X_color = Rcd^T (X_depth - t) = Rcd^T Rd (X - Cd) - Rcd^T t = Rc (X - Cc), Rc = Rcd^T Rd, Cc = Cd + Rd^T t
    rotation = color_depth_rotation.T @ depth_rotation
    position = depth_position + depth_rotation.T @ (color_depth_translation_m * 1000)
    return dict(depth_rotation=depth_rotation, depth_position=depth_position, depth_intrinsics=depth_intrinsics,
                color_depth_rotation=color_depth_rotation, color_depth_translation_m=color_depth_translation_m,
                intrinsics=color_intrinsics, rotation=rotation, position=position)


def device_entry(name, serial, params):
    """One device of device_repository.json, in the real file's key order and layout."""
    def flat(matrix):
        return np.asarray(matrix, float).reshape(-1).tolist()
    color, depth = params['intrinsics'], params['depth_intrinsics']
    return {'Device': name, 'Type': 'Intel RealSense D415', 'Serial': serial, 'Firmware': '05.11.01.00',
            'Date': 'Thu Feb  7 12.47.57 2019\n',
            'Color Intrinsics': [{'1280x720': flat(color)}, {'1920x1080': flat(color * [[1.5], [1.5], [1]])},
                                 {'640x480': flat(color * [[2 / 3], [2 / 3], [1]])}],
            'Depth Intrinsics': [{'1280x720': flat(depth)}, {'640x480': flat(depth * [[2 / 3], [2 / 3], [1]])}],
            'Color Depth Rotation': flat(params['color_depth_rotation']),
            'Color Depth Translation': params['color_depth_translation_m'].tolist()}


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
    camera_name, i_frame, joints_mm (32, 3) or None when the frame has no pose, **camera_params: the colour
    camera's intrinsics, rotation (world->colour), position (mm), and the depth sensor's pose)}."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    written = {}
    for subject, sequences in SEQUENCES.items():
        subject_dir = root / subject
        (subject_dir / 'pose').mkdir(parents=True, exist_ok=True)
        names = CAMERAS[subject] + [UNCALIBRATED[subject]] if subject in UNCALIBRATED else CAMERAS[subject]
        devices = []
        for name in names:
            params = camera_params(subject, name)
            devices.append(device_entry(name, f'74851206{len(devices):04d}', params))
            if name in CAMERAS[subject]:
                np.savetxt(subject_dir / 'pose' / f'{name}.extrinsics',
                           np.concatenate([params['depth_rotation'].T, [params['depth_position']]]))
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
    for i_frame in range(n_frames):
        i_pose = i_frame - offset1
        has_pose = i_pose >= 0 and (subject, i_frame) != MISSING_POSE
        if has_pose:
            np.save(dump_dir / 'gposes3d' / f'{i_pose}.npy', motion[i_frame][np.newaxis].astype(np.float32))
        for name in camera_names:
            params = camera_params(subject, name)
            joints = motion[i_frame][kept_indices()]
            path = dump_dir / 'color' / f'{i_frame}_{name}_color_{1000 + 33 * i_frame}.png'
            pixels = project(joints, params['intrinsics'], params['rotation'], params['position'])
            cv2.imwrite(str(path), render_dots(pixels), [cv2.IMWRITE_PNG_COMPRESSION, 1])
            written[path.relative_to(root).as_posix()] = dict(
                subject=subject, camera_name=name, i_frame=i_frame, joints_mm=joints if has_pose else None,
                **params)
