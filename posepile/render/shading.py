"""Lambertian shading shared by the rasterizers (numpy and OpenGL), in linear light, with Blender's light units,
and the compositing of an RGBA render over the original's grey background.

A diffuse surface of albedo a lit by a point light of power P watts at distance d, at angle theta, has the value
a * P cos(theta) / (4 pi^2 d^2) (Cycles: radiant intensity P / (4 pi), reflected radiance a E / pi); a Lambertian
disk of power P and area A seen at distance d under angles theta_e (emitter) and theta_r (receiver) gives
a * P cos(theta_e) cos(theta_r) / (pi^2 d^2) per unit of its area share, integrated here with AREA_SAMPLES points.
"""
import numpy as np

AREA_SAMPLES = 8  # points on the disk area light (a fixed pattern: deterministic, no noise)
BACKGROUND_GREY = 127
MASK_ALPHA_THRESHOLD = 128  # alpha >= this (of 255) is the person


def srgb_to_linear(values):
    """Linear light of sRGB values (uint8 0-255 or float 0-1)."""
    values = np.asarray(values)
    x = values / 255.0 if values.dtype == np.uint8 else values.astype(np.float64)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb_uint8(values):
    x = np.clip(np.asarray(values, np.float64), 0, 1)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)
    return np.round(srgb * 255).astype(np.uint8)


def area_light_points(area):
    """(AREA_SAMPLES, 3) points on the disk: the centre and a ring at 0.7 of the radius (equal weights)."""
    helper = np.array([1.0, 0, 0]) if abs(area.normal[0]) < 0.9 else np.array([0, 1.0, 0])
    a = np.cross(area.normal, helper)
    a /= np.linalg.norm(a)
    b = np.cross(area.normal, a)
    angles = np.arange(AREA_SAMPLES - 1) * (2 * np.pi / (AREA_SAMPLES - 1))
    ring = 0.7 * area.radius_m * (np.cos(angles)[:, None] * a + np.sin(angles)[:, None] * b)
    return np.concatenate([area.position[None], area.position + ring])


def shade_linear(positions, normals, albedo, eye_m, lights):
    """(N, 3) linear colours of surface points (N, 3) m with (unnormalised) normals and linear albedo, seen from
    `eye_m`: normals turned towards the viewer (two-sided surfaces, as scans have holes)."""
    normals = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    to_eye = eye_m - positions
    normals = np.where(np.sum(normals * to_eye, axis=1, keepdims=True) < 0, -normals, normals)
    irradiance = np.full((len(positions), 3), lights.ambient)
    for light in lights.points:
        to_light = light.position - positions
        dist2 = np.sum(to_light * to_light, axis=1)
        cos = np.maximum(np.sum(normals * to_light, axis=1) / np.sqrt(dist2), 0)
        irradiance += (light.power_w / (4 * np.pi ** 2) * cos / dist2)[:, None] * light.color
    area = lights.area
    for point in area_light_points(area):
        to_light = point - positions
        dist2 = np.sum(to_light * to_light, axis=1)
        dist = np.sqrt(dist2)
        cos_r = np.maximum(np.sum(normals * to_light, axis=1) / dist, 0)
        cos_e = np.maximum(-(to_light @ area.normal) / dist, 0)
        irradiance += (area.power_w / AREA_SAMPLES / np.pi ** 2 * cos_r * cos_e / dist2)[:, None] * area.color
    return albedo * irradiance


def composite(rgba, grey=BACKGROUND_GREY):
    """(RGB uint8 image over a uniform grey background, bool mask alpha >= MASK_ALPHA_THRESHOLD) of an (H, W, 4)
    uint8 straight-alpha render: what the original does with its RGBA output."""
    rgba = np.asarray(rgba)
    alpha = rgba[..., 3:4].astype(np.float64) / 255
    rgb = np.round(rgba[..., :3] * alpha + grey * (1 - alpha)).astype(np.uint8)
    return rgb, rgba[..., 3] >= MASK_ALPHA_THRESHOLD
