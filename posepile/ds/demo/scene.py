"""The demo's synthetic world: walking people with an articulated 17-joint skeleton, rendered by ray casting.

Units: mm, world z up, floor at z = 0. People are unions of shaded ellipsoids (one per bone, plus head,
pelvis and feet), so occlusion between body parts and between people is exact per pixel. The room has a
checkered floor with soft contact shadows and a textured cylindrical wall. Rays come from the camera's
own (distorted) pixel grid, so lens distortion is rendered exactly, not approximated by a warp.
"""
import numpy as np

from posepile.joint_info import JointInfo

JOINT_NAMES = 'pelv,rhip,rkne,rank,lhip,lkne,lank,spin,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri'
JOINT_EDGES = 'htop-head-neck-spin-pelv-lhip-lkne-lank,pelv-rhip-rkne-rank,neck-lsho-lelb-lwri,neck-rsho-relb-rwri'


def joint_info():
    return JointInfo(JOINT_NAMES, JOINT_EDGES)


J = {name: i for i, name in enumerate(JOINT_NAMES.split(','))}

# Per person: path centre and radii (mm), angular speed (rad/s), phase, cadence (steps/s), body scale,
# arm-raise frequency, colours (shirt, trousers, skin) as linear-light RGB.
PEOPLE = [
    dict(centre=(-200.0, 150.0), radii=(1500.0, 950.0), omega=0.55, phase=0.0, cadence=0.95, scale=1.0,
         arm_raise_hz=0.23, shirt=(0.55, 0.08, 0.06), trousers=(0.05, 0.07, 0.22), skin=(0.62, 0.42, 0.30),
         shirt_stripes=True),
    dict(centre=(250.0, -100.0), radii=(1100.0, 1450.0), omega=-0.48, phase=2.2, cadence=0.85, scale=0.94,
         arm_raise_hz=0.17, shirt=(0.10, 0.35, 0.12), trousers=(0.18, 0.14, 0.10), skin=(0.45, 0.28, 0.18),
         shirt_stripes=False),
]


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def person_poses(person_index, n_frames, fps):
    """(n_frames, 17, 3) joint positions in mm of one person walking along an elliptic path.

    Joint angles are smooth periodic functions of a gait phase; arms also lift slowly now and then, and
    the head turns, so consecutive poses differ by varying amounts (which adaptive selection exploits).
    """
    p = PEOPLE[person_index]
    s = p['scale']
    t = np.arange(n_frames) / fps
    angle = p['phase'] + p['omega'] * t
    cx, cy = p['centre']
    rx, ry = p['radii']
    root_xy = np.stack([cx + rx * np.cos(angle), cy + ry * np.sin(angle)], -1)
    velocity = np.stack([-rx * np.sin(angle), ry * np.cos(angle)], -1) * np.sign(p['omega'])
    forward = np.concatenate([_unit(velocity), np.zeros((n_frames, 1))], -1)
    up = np.array([0.0, 0.0, 1.0])
    left = np.cross(up, forward)
    gait = 2 * np.pi * p['cadence'] * t / 2 + p['phase']  # one gait cycle = two steps

    pelvis = np.concatenate([root_xy, (930 * s + 18 * np.cos(2 * gait))[:, None]], -1)
    poses = np.zeros((n_frames, 17, 3))
    poses[:, J['pelv']] = pelvis

    def bone(direction_angles, length):
        flex, abduct = direction_angles
        # flex: rotation forward from straight down (rad); abduct: sideways (rad, + = to the body's outside)
        return length * (-np.cos(flex)[:, None] * np.cos(abduct)[:, None] * up
                         + np.sin(flex)[:, None] * forward)

    for side, sign in (('r', -1.0), ('l', 1.0)):
        leg_phase = gait + (0 if side == 'r' else np.pi)
        hip = pelvis + sign * 95 * s * left - 15 * s * up
        hip_flex = 0.42 * np.sin(leg_phase)
        knee_flex = 0.55 * np.clip(np.sin(leg_phase + 1.3), 0, None) + 0.08
        knee = hip + bone((hip_flex, np.zeros(n_frames)), 440 * s)
        ankle = knee + bone((hip_flex - knee_flex, np.zeros(n_frames)), 430 * s)
        poses[:, J[side + 'hip']], poses[:, J[side + 'kne']], poses[:, J[side + 'ank']] = hip, knee, ankle

    lean = 0.06 + 0.03 * np.sin(2 * gait)
    torso_dir = _unit(np.cos(lean)[:, None] * up + np.sin(lean)[:, None] * forward)
    poses[:, J['spin']] = pelvis + 240 * s * torso_dir
    neck = pelvis + 500 * s * torso_dir
    poses[:, J['neck']] = neck
    head_turn = 0.35 * np.sin(0.7 * t + p['phase'])
    head_forward = _unit(np.cos(head_turn)[:, None] * forward + np.sin(head_turn)[:, None] * left)
    poses[:, J['head']] = neck + 110 * s * up + 35 * s * head_forward
    poses[:, J['htop']] = neck + 250 * s * up + 20 * s * head_forward

    raise_amount = np.clip(1.6 * np.sin(2 * np.pi * p['arm_raise_hz'] * t + p['phase']) - 0.6, 0, None)
    for side, sign in (('r', -1.0), ('l', 1.0)):
        arm_phase = gait + (np.pi if side == 'r' else 0)
        shoulder = neck + sign * 175 * s * left - 35 * s * up
        swing = 0.35 * np.sin(arm_phase)
        abduction = 0.12 + (raise_amount if side == 'l' else 0.6 * raise_amount)
        outward = sign * left
        upper_dir = (-np.cos(swing)[:, None] * np.cos(abduction)[:, None] * up
                     + np.sin(swing)[:, None] * forward + np.sin(abduction)[:, None] * outward)
        elbow = shoulder + 285 * s * _unit(upper_dir)
        elbow_flex = 0.35 + 0.25 * np.sin(arm_phase + 0.8) ** 2
        fore_dir = _unit(np.cos(elbow_flex)[:, None] * _unit(upper_dir) + np.sin(elbow_flex)[:, None] * forward)
        wrist = elbow + 255 * s * fore_dir
        poses[:, J[side + 'sho']], poses[:, J[side + 'elb']], poses[:, J[side + 'wri']] = shoulder, elbow, wrist
    return poses.astype(np.float32)


# Body volumes: (joint a, joint b, radius across (mm), radius in depth (mm), extra length (mm), part)
_BONE_VOLUMES = [
    ('pelv', 'neck', 165, 115, 40, 'shirt'),
    ('pelv', 'pelv', 160, 115, 90, 'trousers'),
    ('rhip', 'rkne', 78, 78, 40, 'trousers'), ('lhip', 'lkne', 78, 78, 40, 'trousers'),
    ('rkne', 'rank', 58, 58, 30, 'trousers'), ('lkne', 'lank', 58, 58, 30, 'trousers'),
    ('rsho', 'relb', 52, 52, 45, 'shirt'), ('lsho', 'lelb', 52, 52, 45, 'shirt'),
    ('relb', 'rwri', 40, 40, 40, 'skin'), ('lelb', 'lwri', 40, 40, 40, 'skin'),
    ('neck', 'head', 48, 48, 10, 'skin'),
    ('head', 'head', 100, 100, 15, 'skin'),
]


def body_ellipsoids(pose, person_index):
    """List of (centre (3,), axes (3,3) rows = unit directions, radii (3,), part, person) for one pose."""
    scale = PEOPLE[person_index]['scale']
    result = []
    forward_hint = pose[J['lhip']] - pose[J['rhip']]
    forward_hint = np.cross(forward_hint, [0, 0, 1])
    forward_hint = forward_hint / max(np.linalg.norm(forward_hint), 1e-6)
    for a, b, r_across, r_depth, extra, part in _BONE_VOLUMES:
        pa, pb = pose[J[a]].astype(np.float64), pose[J[b]].astype(np.float64)
        if a == b:
            centre = pa + (np.array([0, 0, 25.0]) if a == 'head' else np.array([0, 0, -20.0]))
            axis = np.array([0.0, 0.0, 1.0])
            half = (r_across if a == 'head' else 110) * scale + extra * 0.1
        else:
            centre = (pa + pb) / 2
            axis = pb - pa
            half = np.linalg.norm(axis) / 2 + extra * scale
            axis = axis / max(np.linalg.norm(axis), 1e-6)
        depth_dir = forward_hint - np.dot(forward_hint, axis) * axis
        depth_dir /= max(np.linalg.norm(depth_dir), 1e-6)
        across_dir = np.cross(axis, depth_dir)
        radii = np.array([half, r_across * scale, r_depth * scale])
        if a == 'head' and b == 'head':
            radii = np.array([118 * scale, 92 * scale, 100 * scale])
        result.append((centre, np.stack([axis, across_dir, depth_dir]), radii, part, person_index))
    for side in 'rl':  # feet point forward from the ankle
        ankle = pose[J[side + 'ank']].astype(np.float64)
        foot_dir = forward_hint
        centre = ankle + 70 * scale * foot_dir - np.array([0, 0, 35.0 * scale])
        across = np.cross([0, 0, 1.0], foot_dir)
        result.append((centre, np.stack([foot_dir, across, [0, 0, 1.0]]),
                       np.array([120, 50, 40]) * scale, 'shoes', person_index))
    return result


def camera_rays(camera, imshape):
    """Unit ray directions in world coordinates for every pixel (H, W, 3), exact under lens distortion."""
    ys, xs = np.mgrid[:imshape[0], :imshape[1]].astype(np.float64)
    rays_cam = camera.image_to_camera(np.stack([xs, ys], -1))
    rays_world = rays_cam @ camera.R
    return (rays_world / np.linalg.norm(rays_world, axis=-1, keepdims=True)).astype(np.float64)


WALL_RADIUS_MM = 9000.0
_LIGHT = _unit(np.array([0.35, -0.45, 0.82]))


def render_background(camera, rays):
    """Floor (checkers + grain) and a cylindrical wall (colour bands and panels); linear RGB float32 and the
    floor hit points (H, W, 2) (NaN where the ray hits the wall)."""
    origin = camera.t
    dz = rays[..., 2]
    with np.errstate(divide='ignore', invalid='ignore'):
        t_floor = np.where(dz < -1e-9, -origin[2] / dz, np.inf)
    # cylinder x^2 + y^2 = R^2
    a = rays[..., 0] ** 2 + rays[..., 1] ** 2
    b = origin[0] * rays[..., 0] + origin[1] * rays[..., 1]
    c = origin[0] ** 2 + origin[1] ** 2 - WALL_RADIUS_MM ** 2
    t_wall = (-b + np.sqrt(np.maximum(b * b - a * c, 0))) / np.maximum(a, 1e-12)
    floor = t_floor < t_wall
    hit = origin + np.where(floor, t_floor, t_wall)[..., None] * rays
    image = np.zeros(rays.shape, np.float32)

    fx, fy = hit[..., 0], hit[..., 1]
    checker = ((np.floor(fx / 600) + np.floor(fy / 600)) % 2).astype(np.float32)
    grain = 0.5 + 0.25 * np.sin(fx / 37.0) * np.sin(fy / 53.0) + 0.25 * np.sin((fx + 2 * fy) / 91.0)
    floor_rgb = (0.10 + 0.16 * checker + 0.05 * grain)[..., None] * np.array([1.0, 0.85, 0.65], np.float32)
    fade = np.exp(-np.hypot(fx, fy) / 12000.0)[..., None]
    image[floor] = (floor_rgb * fade)[floor]

    azimuth = np.arctan2(hit[..., 1], hit[..., 0])
    height = hit[..., 2]
    band = (np.floor(azimuth * 12 / np.pi) % 3)
    palette = np.array([[0.30, 0.28, 0.22], [0.16, 0.20, 0.28], [0.34, 0.20, 0.16]], np.float32)
    wall_rgb = palette[band.astype(int)]
    panel = ((np.floor(height / 700) + np.floor(azimuth * 40 / np.pi)) % 2)[..., None]
    wall_rgb = wall_rgb * (0.75 + 0.25 * panel) * (0.85 + 0.15 * np.sin(height / 130.0))[..., None]
    image[~floor] = wall_rgb[~floor]
    floor_points = np.where(floor[..., None], hit[..., :2], np.nan)
    return image.astype(np.float32), floor_points


def _part_colour(person_index, part):
    p = PEOPLE[person_index]
    if part == 'shoes':
        return np.array([0.03, 0.03, 0.03])
    return np.asarray(p[part], np.float64)


def render_people(camera, rays, poses, background, floor_points, box_margin_px=6):
    """Render people over `background`. poses: list of (17, 3) mm (one per person).

    Returns (linear RGB float32 image, person_id map (H, W) int8 with -1 for background).
    """
    imshape = background.shape[:2]
    image = background.copy()
    depth = np.full(imshape, np.inf)
    person_id = np.full(imshape, -1, np.int8)
    origin = camera.t

    # soft contact shadows on the floor
    valid_floor = np.isfinite(floor_points[..., 0])
    if np.any(valid_floor):
        shade = np.ones(imshape, np.float32)
        for pose in poses:
            feet = (pose[J['lank']] + pose[J['rank']]) / 2
            d2 = (floor_points[..., 0] - feet[0]) ** 2 + (floor_points[..., 1] - feet[1]) ** 2
            shade *= np.where(valid_floor, 1 - 0.55 * np.exp(-d2 / (2 * 280.0 ** 2)), 1).astype(np.float32)
        image *= shade[..., None]

    for person_index, pose in enumerate(poses):
        for centre, axes, radii, part, _ in body_ellipsoids(pose, person_index):
            box = _ellipsoid_image_box(camera, centre, radii.max(), imshape, box_margin_px)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            d = rays[y0:y1, x0:x1]
            # ray in the ellipsoid's unit-sphere frame
            transform = axes / radii[:, None]
            o_local = transform @ (origin - centre)
            d_local = d @ transform.T
            qa = np.einsum('...i,...i->...', d_local, d_local)
            qb = d_local @ o_local
            qc = o_local @ o_local - 1
            disc = qb * qb - qa * qc
            hit = disc > 0
            t_hit = np.where(hit, (-qb - np.sqrt(np.maximum(disc, 0))) / qa, np.inf)
            closer = hit & (t_hit > 0) & (t_hit < depth[y0:y1, x0:x1])
            if not np.any(closer):
                continue
            d_hit = d[closer]
            t_closer = t_hit[closer]
            point = origin + t_closer[:, None] * d_hit
            normal = (point - centre) @ (transform.T @ transform)
            normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
            lambert = np.clip(normal @ _LIGHT, 0, None)
            rim = np.clip(1 + np.einsum('...i,...i->...', normal, d_hit), 0, 1) ** 3
            colour = _part_colour(person_index, part)
            if part == 'shirt' and PEOPLE[person_index]['shirt_stripes']:
                stripes = (np.floor(point[:, 2] / 70) % 2)[:, None]
                colour = colour * (0.6 + 0.5 * stripes)
            elif part == 'trousers':
                colour = colour * (0.9 + 0.1 * np.sin(point[:, 2] / 15.0))[:, None]
            shaded = colour * (0.25 + 0.85 * lambert[:, None]) + 0.05 * rim[:, None]
            image[y0:y1, x0:x1][closer] = shaded
            depth[y0:y1, x0:x1][closer] = t_hit[closer]
            person_id[y0:y1, x0:x1][closer] = person_index
    return image, person_id


def _ellipsoid_image_box(camera, centre, radius, imshape, margin):
    """Conservative pixel box [x0, y0, x1, y1) of a sphere of `radius` around `centre`, or None."""
    cam_point = camera.world_to_camera(centre)
    if cam_point[2] <= radius + 10:
        return None
    offsets = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [1, 1, 0], [-1, -1, 0], [1, -1, 0],
                        [-1, 1, 0]], np.float64) * radius * 1.45
    pixels = camera.camera_to_image(cam_point + offsets)
    pixels = pixels[np.all(np.isfinite(pixels), 1)]
    if len(pixels) == 0:
        return None
    x0, y0 = np.floor(pixels.min(0)).astype(int) - margin
    x1, y1 = np.ceil(pixels.max(0)).astype(int) + margin
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(imshape[1], x1), min(imshape[0], y1)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def to_uint8(linear_rgb, rng=None, noise_sigma=2.0):
    """Linear light -> gamma 2.2 uint8, with Gaussian sensor noise (in 8-bit levels) when rng is given."""
    encoded = np.clip(linear_rgb, 0, 1) ** (1 / 2.2) * 255
    if rng is not None and noise_sigma > 0:
        encoded = encoded + rng.normal(0, noise_sigma, encoded.shape).astype(np.float32)
    return np.clip(encoded + 0.5, 0, 255).astype(np.uint8)
