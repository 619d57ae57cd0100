"""A tiny SAIL-VOS 3D release (1280×800 frames, GTA-like world coordinates in metres, z up):

    <seq>/images/<frame:06d>.bmp              frames with bright dots at the projected 26 joints
    <seq>/visible/<frame:06d>.npy             int32 (H, W) id of the visible object per pixel (0 = none)
    <seq>/<id>_<class>_<name>/<frame:06d>.png amodal masks (0 / 255) of the people and of a car
    <seq>/<id>_Ped_<name>/<frame:06d>_2d.txt  N_BONES rows "x y" px (invalid: -1280 -800)
    <seq>/<id>_Ped_<name>/<frame:06d>_3d.txt  N_BONES rows "x y z" m (invalid: 0 0 0)
Each joint's raw bones sit around it with offsets summing to zero, so the mean of the bones is the joint; other
bones are body points used only for the camera estimation. A moving camera (one per frame, shared by the people
of a sequence) with a per-sequence horizontal field of view.
"""
from pathlib import Path

import cv2
import numpy as np

from posepile.util.camera import Camera

WIDTH, HEIGHT = 1280, 800
N_BONES = 350
WORLD_OFFSET_MM = np.array([-1234567.0, 2345678.0, 31000.0])  # GTA coordinates are kilometres from the origin
JOINT_BONES = (
    (341, 8), (61,), (216, 234), (171,), (164, 309), (255, 39), (330,), (108,), (45, 294),
    (215, 131, 253), (295,), (144, 315), (147, 342, 27), (85,), (152,), (206, 128, 102), (307, 312),
    (130,), (11,), (167, 188, 191, 310), (194, 193, 236, 78), (227, 304, 58, 229), (37, 260, 195),
    (47, 148, 232), (323,), (160,))
# a standing person in its own frame (x right, y forward, z up), mm, in the 26-joint order
TEMPLATE_MM = np.array([
    [0, 0, 1750], [0, 0, 1500], [-180, 0, 1450], [-230, 0, 1180], [-250, 40, 930], [180, 0, 1450],
    [230, 0, 1180], [250, 40, 930], [-100, 0, 950], [-110, 30, 520], [-110, 0, 100], [100, 0, 950],
    [110, 30, 520], [110, 0, 100], [0, 0, 1200], [0, 20, 1620], [0, 0, 950], [-115, 170, 20], [115, 170, 20],
    [0, 110, 1620], [-35, 90, 1660], [35, 90, 1660], [-80, 0, 1630], [80, 0, 1630], [-260, 60, 850],
    [260, 60, 850]], np.float64)
EDGES = [(0, 15), (15, 1), (1, 14), (14, 16), (1, 2), (2, 3), (3, 4), (4, 24), (1, 5), (5, 6), (6, 7), (7, 25),
         (16, 8), (8, 9), (9, 10), (10, 17), (16, 11), (11, 12), (12, 13), (13, 18), (15, 19)]
# sequence -> (horizontal FOV deg, {object id: (folder name, lateral position mm)}, occluded (object id, frame))
SEQUENCES = {
    'ah_3a_ext': (55.0, {3: ('3_Ped_a_m_y_hipster', -700.0), 12: ('12_Ped_a_f_y_tourist', 700.0)}, (3, 4)),
    'gtav_cops': (72.0, {4: ('4_Ped_s_m_y_cop', 0.0)}, None),
}
CAR = (5, '5_Car_sultan')
NO_CAMERA_FRAME = ('gtav_cops', 4, 2)  # (sequence, object id, frame): every 2D bone invalid
MISSING_JOINT_FRAME = ('ah_3a_ext', 12, 3, 25)  # (sequence, object id, frame, joint): its bone all-zero in 3D
LIMB_WIDTH_PX = 22


def focal_of(fov_deg):
    return (WIDTH / 2) / np.tan(np.deg2rad(fov_deg) / 2)


def make_motion(rng, n_frames, lateral_mm):
    """(n_frames, 26, 3) world mm (before the GTA offset): stepping with variable speed, turning, swaying."""
    steps = rng.uniform(0, 60, n_frames) * (rng.uniform(size=n_frames) < 0.7)
    steps[4] = 200  # a big step: this frame passes the selection
    position = np.cumsum(steps)[:, None] * [0.3, 1, 0] + [lateral_mm, 0, 0]
    phases = rng.uniform(0, 2 * np.pi, (26, 3))
    frames = []
    for t in range(n_frames):
        yaw = 0.05 * t
        rotation = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
        sway = 30 * np.sin(0.6 * t + phases) * (np.arange(26) >= 2)[:, None]
        frames.append((TEMPLATE_MM + sway) @ rotation.T + position[t])
    return np.stack(frames)


def make_bones(rng, joints_mm, extra_offsets):
    """(N_BONES, 3) mm: each joint's bones around it (offsets summing to zero), the others at body points."""
    anchors = rng.integers(0, 26, N_BONES)
    bones = joints_mm[anchors] + extra_offsets
    for joint, ids in zip(joints_mm, JOINT_BONES):
        offsets = rng.normal(0, 20, (len(ids), 3))
        bones[list(ids)] = joint + offsets - offsets.mean(axis=0)
    bones[8] = 0  # htop's second bone is invalid (all zero): htop is then its other bone alone
    bones[341] = joints_mm[0]
    return bones


def make_camera(rng, target_mm, fov_deg, t):
    azimuth = 0.2 + 0.03 * t
    distance = 5200 + 40 * t
    center = target_mm + [distance * np.sin(azimuth), distance * np.cos(azimuth), 700 + rng.uniform(-30, 30)]
    intrinsics = [[focal_of(fov_deg), 0, WIDTH / 2], [0, focal_of(fov_deg), HEIGHT / 2], [0, 0, 1]]
    camera = Camera(center, None, intrinsics, world_up=(0, 0, 1))
    return camera.turn_towards(target_world_point=target_mm + rng.uniform(-50, 50, 3))


def silhouette(pixels):
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    for i, j in EDGES:
        p, q = np.round(pixels[[i, j]] * 16).astype(np.int64)
        cv2.line(mask, tuple(int(c) for c in p), tuple(int(c) for c in q), 255, LIMB_WIDTH_PX, cv2.LINE_8, 4)
    return mask > 0


def render_dots(all_pixels):
    canvas = np.full((HEIGHT, WIDTH), 45.0, np.float32)
    ys, xs = np.mgrid[:HEIGHT, :WIDTH]
    for u, v in np.concatenate(all_pixels):
        x0, x1, y0, y1 = int(u) - 12, int(u) + 13, int(v) - 12, int(v) + 13
        canvas[y0:y1, x0:x1] += 200 * np.exp(-((xs[y0:y1, x0:x1] - u) ** 2 + (ys[y0:y1, x0:x1] - v) ** 2) / 8)
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def write_fake_release(root, seed=0, n_frames=6):
    """Writes the release under `root` ($DATA_ROOT/sailvos); returns {(sequence, object id, frame): dict(joints_mm
    (26, 3) world, NaN = invalid, camera, joints2d (26, 2), visible_box, occlusion, n_valid_bones (2D and 3D),
    people_mask (H, W) bool)}."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    written = {}
    for sequence, (fov, people, occluded) in SEQUENCES.items():
        motions = {oid: make_motion(rng, n_frames, lateral) + WORLD_OFFSET_MM for oid, (_, lateral) in people.items()}
        offsets = {oid: rng.normal(0, 80, (N_BONES, 3)) for oid in people}
        for t in range(n_frames):
            target = np.mean([m[t, 16] for m in motions.values()], axis=0)
            camera = make_camera(rng, target, fov, t)
            frame_items = _write_frame(root, sequence, t, camera, people, motions, offsets, occluded, rng)
            written.update(frame_items)
    return written


def _write_frame(root, sequence, t, camera, people, motions, offsets, occluded, rng):
    seq_dir = root / sequence
    frame = f'{t:06d}'
    visible = np.zeros((HEIGHT, WIDTH), np.int32)
    car = np.zeros((HEIGHT, WIDTH), bool)
    car[700:790, 20:300] = True
    items, all_pixels, amodal = {}, [], {}
    # farther people first, so nearer ones cover them in the visibility map
    depth = {oid: camera.world_to_camera(motions[oid][t, 16:17])[0, 2] for oid in people}
    for oid in sorted(people, key=lambda o: -depth[o]):
        folder = people[oid][0]
        joints = motions[oid][t].copy()
        bones = make_bones(rng, joints, offsets[oid])
        if (sequence, oid, t) == MISSING_JOINT_FRAME[:3]:
            joint = MISSING_JOINT_FRAME[3]
            bones[list(JOINT_BONES[joint])] = 0
            joints[joint] = np.nan
        valid3d = np.any(bones != 0, axis=1)
        bones2d = camera.world_to_image(np.where(valid3d[:, None], bones, joints[16]))
        bones2d[~valid3d] = [-WIDTH, -HEIGHT]
        bones2d[[2, 3]] = [-WIDTH, -HEIGHT]  # invalid in 2D only
        bones[[0, 1]] = 0  # invalid in 3D only (their 2D rows keep projected values)
        if (sequence, oid, t) == NO_CAMERA_FRAME:
            bones2d[:] = [-WIDTH, -HEIGHT]
        pixels = camera.world_to_image(np.where(np.isnan(joints), motions[oid][t], joints))
        assert np.all((pixels > 30) & (pixels < [WIDTH - 30, HEIGHT - 30])), 'fake person leaves the image'
        all_pixels.append(pixels)
        body = silhouette(pixels)
        amodal[oid] = body
        visible[body] = oid
        _write_table(seq_dir / folder / f'{frame}_2d.txt', bones2d, '%.5f')
        _write_table(seq_dir / folder / f'{frame}_3d.txt', bones / 1000, '%.7f')
        _write_mask(seq_dir / folder / f'{frame}.png', body)
        items[(sequence, oid, t)] = dict(
            joints_mm=joints, camera=camera, joints2d=pixels,
            n_valid_bones=int(np.count_nonzero(np.any(bones != 0, axis=1) & (bones2d[:, 0] != -WIDTH))))
    cover = car.copy()
    if occluded is not None and occluded[1] == t:
        x, y, w, h = cv2.boundingRect(amodal[occluded[0]].astype(np.uint8))
        cover[y + h // 8:y + h, x:x + w] = True  # the car hides all but the head
    visible[cover] = CAR[0]
    _write_mask(seq_dir / CAR[1] / f'{frame}.png', cover)
    for key, item in items.items():
        own = visible == key[1]
        x, y, w, h = cv2.boundingRect(own.astype(np.uint8))
        item.update(visible_box=np.array([x, y, w, h], np.float64), occlusion=1 - own.sum() / amodal[key[1]].sum(),
                    people_mask=np.isin(visible, list(people)))
    (seq_dir / 'visible').mkdir(parents=True, exist_ok=True)
    np.save(seq_dir / 'visible' / f'{frame}.npy', visible)
    (seq_dir / 'images').mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(seq_dir / 'images' / f'{frame}.bmp'), render_dots(all_pixels)[..., ::-1])
    return items


def _write_table(path, values, number_format):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, values, fmt=number_format)


def _write_mask(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), mask.astype(np.uint8) * 255)
