"""Random views and lights of a person mesh, as the original's Blender render scripts draw them (nlf-era-facts §1.3):
a pinhole camera with a field of view of 30-70 degrees, an elevation of -30..+60 degrees above the horizontal plane
through the body box centre, any azimuth, aimed at that centre from the distance at which the body fills the
frame; 5-15 coloured point lights around the body and one disk area light above it.

"Fills the frame": the camera stands at the distance where the sphere circumscribing the body box (centre =
box centre, radius = half its diagonal) just touches the image borders, d = r / sin(fov / 2): the whole body is
always inside the image, from any direction, and its longer side spans most of it.

Everything is drawn from a numpy Generator, so one seed gives one scene. Lights are in metres (the mesh's frame);
the camera is a posepile Camera (optical centre in mm, world -> camera rotation, pixel centres at integers).
Light powers are in Blender's units (watts) and are chosen so that the total diffuse light reaching the body
centre is 1-2 times that of a unit white light (the exposure stays sensible whatever the number of lights).
"""
import dataclasses
import zlib

import numpy as np

FOV_DEG_RANGE = (30.0, 70.0)
ELEVATION_DEG_RANGE = (-30.0, 60.0)
N_POINT_LIGHTS_RANGE = (5, 15)  # inclusive
TOTAL_LIGHT_RANGE = (1.0, 2.0)  # diffuse irradiance at the body centre / pi, summed over all lights
AREA_LIGHT_SHARE_RANGE = (0.2, 0.5)  # share of the total light given by the area light


@dataclasses.dataclass
class PointLight:
    position: np.ndarray  # (3,) m
    color: np.ndarray  # (3,) in [0, 1]
    power_w: float  # Blender watts: radiant intensity power_w / (4 pi) W/sr


@dataclasses.dataclass
class AreaLight:
    position: np.ndarray  # (3,) disk centre, m
    normal: np.ndarray  # (3,) unit, the emitting side (towards the body)
    radius_m: float
    color: np.ndarray
    power_w: float  # Blender watts (Lambertian emitter: radiance power_w / (pi * area))


@dataclasses.dataclass
class Lights:
    points: list
    area: AreaLight
    ambient: float = 0.03  # stands for the bounce light a path tracer adds (rasterizers only)


def scene_seed(*parts):
    """A stable 63-bit seed from strings/ints (scan name, view index, base seed): same inputs, same seed on every
    machine and Python version (zlib.crc32, not hash())."""
    words = [zlib.crc32(str(p).encode()) for p in parts]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> np.uint64(1))


def body_box(vertices_m):
    vertices_m = np.asarray(vertices_m, np.float64)
    return vertices_m.min(axis=0), vertices_m.max(axis=0)


def look_at_rotation(eye, target, up):
    """(3, 3) world -> camera rotation of a camera at `eye` looking at `target` (x right, y down, z forward);
    `up` is the world's up direction."""
    forward = np.asarray(target, np.float64) - np.asarray(eye, np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, np.float64))
    if np.linalg.norm(right) < 1e-9:  # looking straight up or down: any right vector
        right = np.cross(forward, np.array([1.0, 0, 0]) if abs(forward[0]) < 0.9 else np.array([0, 0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def _orthonormal_basis(up):
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    helper = np.array([1.0, 0, 0]) if abs(up[0]) < 0.9 else np.array([0, 0, 1.0])
    a = np.cross(up, helper)
    a /= np.linalg.norm(a)
    return a, np.cross(up, a), up


def direction(azimuth_rad, elevation_rad, up):
    a, b, up = _orthonormal_basis(up)
    horizontal = np.cos(azimuth_rad) * a + np.sin(azimuth_rad) * b
    return np.cos(elevation_rad) * horizontal + np.sin(elevation_rad) * up


def sample_camera(rng, vertices_m, image_size=(512, 512), up=(0, 1, 0), fov_deg_range=FOV_DEG_RANGE,
                  elevation_deg_range=ELEVATION_DEG_RANGE):
    """A posepile Camera (mm) drawn as the module docstring says, for an image of `image_size` (H, W); the field
    of view is that of the larger side."""
    from posepile.util.camera import Camera
    lo, hi = body_box(vertices_m)
    centre, radius = (lo + hi) / 2, np.linalg.norm(hi - lo) / 2
    fov = np.deg2rad(rng.uniform(*fov_deg_range))
    elevation = np.deg2rad(rng.uniform(*elevation_deg_range))
    azimuth = rng.uniform(0, 2 * np.pi)
    distance = radius / np.sin(fov / 2)
    eye = centre + distance * direction(azimuth, elevation, up)
    camera = Camera.from_fov(np.rad2deg(fov), image_size, world_up=tuple(np.asarray(up, np.float64)))
    return Camera(optical_center=eye * 1000, rot_world_to_cam=look_at_rotation(eye, centre, up),
                  intrinsic_matrix=camera.intrinsic_matrix, world_up=tuple(np.asarray(up, np.float64)))


def random_color(rng):
    """A light colour: random hue, saturation 0-0.6, full value (tinted, never black)."""
    import colorsys
    return np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0, 0.6), 1.0))


def sample_lights(rng, vertices_m, up=(0, 1, 0), n_point_range=N_POINT_LIGHTS_RANGE):
    """Lights drawn as the module docstring says: point lights on a shell 1.5-4 body radii from the box centre in
    any direction above -30 degrees, one disk area light 2-4 radii above the body facing its centre."""
    lo, hi = body_box(vertices_m)
    centre, radius = (lo + hi) / 2, np.linalg.norm(hi - lo) / 2
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    n_points = int(rng.integers(n_point_range[0], n_point_range[1] + 1))
    total = rng.uniform(*TOTAL_LIGHT_RANGE)
    area_share = rng.uniform(*AREA_LIGHT_SHARE_RANGE)
    weights = rng.uniform(0.2, 1.0, n_points)
    weights *= total * (1 - area_share) / weights.sum()
    points = []
    for weight in weights:
        dist = radius * rng.uniform(1.5, 4.0)
        position = centre + dist * direction(rng.uniform(0, 2 * np.pi), np.arcsin(rng.uniform(-0.5, 1.0)), up)
        # diffuse value at the centre facing the light: power / (4 pi d^2) / pi = weight
        points.append(PointLight(position, random_color(rng), float(weight * 4 * np.pi ** 2 * dist ** 2)))
    height = radius * rng.uniform(2.0, 4.0)
    position = centre + height * up + radius * rng.uniform(-0.5, 0.5, 3) * (1 - np.abs(up))
    normal = centre - position
    normal /= np.linalg.norm(normal)
    disk_radius = radius * rng.uniform(0.3, 1.0)
    d = np.linalg.norm(centre - position)
    # on-axis diffuse value of a small Lambertian disk: power cos cos / (pi d^2) / pi = total * area_share
    area = AreaLight(position, normal, float(disk_radius), random_color(rng),
                     float(total * area_share * np.pi ** 2 * d ** 2))
    return Lights(points, area)


def sample_scene(seed, vertices_m, image_size=(512, 512), up=(0, 1, 0)):
    """(camera, lights) of one render, from an integer seed (scene_seed of the scan and view names)."""
    rng = np.random.default_rng(seed)
    camera = sample_camera(rng, vertices_m, image_size, up)
    return camera, sample_lights(rng, vertices_m, up)
