"""Small procedural meshes for tests, fakes and benchmarks: UV spheres and a textured "mannequin" (head, torso and
limbs as ellipsoids, metres, y up, feet at y = 0) with a generated texture. Nothing here is a real body."""
import numpy as np

from posepile.render.mesh import Mesh, concatenate


def uv_sphere(centre, radii, n_lat=12, n_lon=16, uv_box=(0.0, 0.0, 1.0, 1.0)):
    """An ellipsoid Mesh (vertices, faces, uvs, face_uvs) with its uv mapped into uv_box (u0, v0, u1, v1)."""
    lat = np.linspace(0, np.pi, n_lat + 1)
    lon = np.linspace(0, 2 * np.pi, n_lon + 1)
    la, lo = np.meshgrid(lat, lon, indexing='ij')
    unit = np.stack([np.sin(la) * np.cos(lo), np.cos(la), np.sin(la) * np.sin(lo)], axis=-1)
    vertices = (unit * np.asarray(radii, np.float64) + np.asarray(centre, np.float64)).reshape(-1, 3)
    u0, v0, u1, v1 = uv_box
    uvs = np.stack([u0 + (u1 - u0) * lo / (2 * np.pi), v1 - (v1 - v0) * la / np.pi], axis=-1).reshape(-1, 2)
    idx = np.arange((n_lat + 1) * (n_lon + 1)).reshape(n_lat + 1, n_lon + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    faces = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    faces = faces[np.linalg.norm(np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]],
                                          vertices[faces[:, 2]] - vertices[faces[:, 0]]), axis=1) > 1e-12]
    return Mesh(vertices, faces, uvs.astype(np.float32), faces.copy(), None)


MANNEQUIN_PARTS = [  # (centre, radii) in units of the height
    ((0.0, 0.91, 0.0), (0.07, 0.085, 0.075)),  # head
    ((0.0, 0.66, 0.0), (0.15, 0.17, 0.09)),  # torso
    ((0.0, 0.50, 0.0), (0.14, 0.08, 0.085)),  # hips
    ((-0.22, 0.66, 0.0), (0.04, 0.16, 0.04)),  # arms
    ((0.22, 0.66, 0.0), (0.04, 0.16, 0.04)),
    ((-0.07, 0.25, 0.0), (0.055, 0.25, 0.055)),  # legs
    ((0.07, 0.25, 0.0), (0.055, 0.25, 0.055)),
]


def checker_texture(size=64, seed=0):
    """(size, size, 3) uint8 texture: coloured checks with a gradient (shows uv mapping and shading)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size]
    palette = rng.integers(40, 230, (4, 3))
    checks = palette[((x // (size // 8)) + 2 * (y // (size // 8))) % 4]
    return np.clip(checks * (0.6 + 0.4 * x[..., None] / size), 0, 255).astype(np.uint8)


def mannequin(height_m=1.7, seed=0, rotation_y_rad=0.0, offset=(0, 0, 0), texture_size=64, detail=1):
    """A textured person-sized Mesh (one shared texture, each part a strip of it); `detail` multiplies the
    sphere resolution (detail=8: ~50k triangles, for benchmarks)."""
    parts = []
    for i, (centre, radii) in enumerate(MANNEQUIN_PARTS):
        box = (i / len(MANNEQUIN_PARTS), 0.0, (i + 1) / len(MANNEQUIN_PARTS), 1.0)
        parts.append(uv_sphere(np.asarray(centre) * height_m, np.asarray(radii) * height_m, 12 * detail,
                               16 * detail, box))
    texture = checker_texture(texture_size, seed)
    for part in parts:
        part.texture = texture
    mesh = concatenate(parts)
    c, s = np.cos(rotation_y_rad), np.sin(rotation_y_rad)
    return mesh.transformed(rotation=[[c, 0, s], [0, 1, 0], [-s, 0, c]], translation=offset)
