"""Meshes to render: textured OBJ files (v / vt / f with a map_Kd texture through mtllib) and vertex-coloured meshes.

A `Mesh` holds vertices in metres (world frame of the scan), triangle faces, and either per-corner UV coordinates
with a texture image or per-vertex colours (or neither: a uniform light grey). OBJ files are read with numpy only
(no trimesh): polygons are split into triangle fans, negative (relative) indices are resolved, and a missing or
unreadable file, a face naming a vertex that does not exist or a texture that cannot be decoded is a one-line
`MeshFormatError` naming the file.
"""
import dataclasses
from pathlib import Path

import numpy as np

from posepile.util.errors import InputError

DEFAULT_GREY = 0.7  # albedo of a mesh without texture or vertex colours


class MeshFormatError(InputError):
    """A mesh or texture file is unreadable or inconsistent (the message names the file)."""


@dataclasses.dataclass
class Mesh:
    """vertices (V, 3) float64 m; faces (F, 3) int64; optional uvs (T, 2) float32 in [0, 1] (v up, the OBJ
    convention) with face_uvs (F, 3) int64 indices into uvs and texture (H, W, 3) uint8 RGB; optional
    vertex_colors (V, 3) float32 in [0, 1]."""
    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray = None
    face_uvs: np.ndarray = None
    texture: np.ndarray = None
    vertex_colors: np.ndarray = None

    def transformed(self, scale=1.0, rotation=None, translation=None):
        """A copy with vertices X' = scale * R X + translation (R default identity; translation in m)."""
        vertices = self.vertices * scale
        if rotation is not None:
            vertices = vertices @ np.asarray(rotation, np.float64).T
        if translation is not None:
            vertices = vertices + np.asarray(translation, np.float64)
        return dataclasses.replace(self, vertices=vertices)

    def box(self):
        """(min corner, max corner) of the vertices, metres."""
        return self.vertices.min(axis=0), self.vertices.max(axis=0)


def concatenate(meshes):
    """One mesh of several (e.g. two people's scans). Textures are not merged: all meshes must share one texture
    image object (or none), or all be untextured."""
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes])
    faces = np.concatenate([m.faces + o for m, o in zip(meshes, offsets)])
    result = Mesh(np.concatenate([m.vertices for m in meshes]), faces)
    if all(m.vertex_colors is not None for m in meshes):
        result.vertex_colors = np.concatenate([m.vertex_colors for m in meshes])
    if all(m.uvs is not None for m in meshes) and all(m.texture is meshes[0].texture for m in meshes):
        uv_offsets = np.cumsum([0] + [len(m.uvs) for m in meshes])
        result.uvs = np.concatenate([m.uvs for m in meshes])
        result.face_uvs = np.concatenate([m.face_uvs + o for m, o in zip(meshes, uv_offsets)])
        result.texture = meshes[0].texture
    return result


def load_obj(path, texture_path=None, scale=1.0):
    """Mesh of a Wavefront OBJ file (vertices times `scale`, to metres). The texture is `texture_path` if given,
    else the map_Kd image of the first material of its mtllib (relative to the OBJ's folder); vertex colours
    are read from `v x y z r g b` lines."""
    path = Path(path)
    try:
        text = path.read_text(errors='replace')
    except OSError as e:
        raise MeshFormatError(f'{path}: cannot read the mesh ({e.strerror or e})') from None
    positions, uv_lines, face_lines, mtllibs = [], [], [], []
    for line in text.splitlines():
        if line.startswith('v '):
            positions.append(line[2:])
        elif line.startswith('vt '):
            uv_lines.append(line[3:])
        elif line.startswith('f '):
            face_lines.append(line[2:].split())
        elif line.startswith('mtllib '):
            mtllibs.append(line[7:].strip())
    if not positions or not face_lines:
        raise MeshFormatError(f'{path}: no vertices or no faces (not an OBJ mesh?)')
    vertex_rows = [row.split() for row in positions]
    width = min(len(r) for r in vertex_rows)
    try:
        if width >= 6:
            table = np.array([r[:6] for r in vertex_rows], np.float64)
            vertices, colors = table[:, :3], table[:, 3:6]
        else:
            vertices, colors = np.array([r[:3] for r in vertex_rows], np.float64), None
        uvs = np.array([r.split()[:2] for r in uv_lines], np.float32).reshape(-1, 2) if uv_lines else None
        faces, face_uvs = _triangulate(face_lines, len(vertices), 0 if uvs is None else len(uvs))
    except (ValueError, IndexError) as e:
        raise MeshFormatError(f'{path}: malformed vertex, uv or face line ({e})') from None
    if not np.all(np.isfinite(vertices)):
        raise MeshFormatError(f'{path}: non-finite vertex coordinates')
    mesh = Mesh(vertices * scale, faces)
    if colors is not None:
        mesh.vertex_colors = (colors / 255 if colors.max() > 1 else colors).astype(np.float32)
    if face_uvs is not None:
        mesh.uvs, mesh.face_uvs = uvs, face_uvs
        texture_path = texture_path or _texture_of_mtllib(path, mtllibs)
        if texture_path is not None:
            mesh.texture = load_texture(texture_path)
    return mesh


def _triangulate(face_lines, n_vertices, n_uvs):
    """(faces (F, 3), face_uvs (F, 3) or None) from OBJ face tokens 'v', 'v/vt', 'v//vn' or 'v/vt/vn' (fans)."""
    faces, face_uvs, has_uv = [], [], n_uvs > 0
    for tokens in face_lines:
        parts = [token.split('/') for token in tokens]
        vids = [_index(p[0], n_vertices) for p in parts]
        tids = [_index(p[1], n_uvs) if has_uv and len(p) > 1 and p[1] else -1 for p in parts]
        for k in range(1, len(vids) - 1):
            faces.append((vids[0], vids[k], vids[k + 1]))
            face_uvs.append((tids[0], tids[k], tids[k + 1]))
    faces = np.array(faces, np.int64)
    if faces.min() < 0 or faces.max() >= n_vertices:
        raise ValueError(f'a face names vertex {int(faces.max()) + 1} of {n_vertices}')
    face_uvs = np.array(face_uvs, np.int64)
    if not has_uv or face_uvs.min() < 0:
        return faces, None
    if face_uvs.max() >= n_uvs:
        raise ValueError(f'a face names uv {int(face_uvs.max()) + 1} of {n_uvs}')
    return faces, face_uvs


def _index(token, count):
    i = int(token)
    return i - 1 if i > 0 else count + i


def _texture_of_mtllib(obj_path, mtllibs):
    for name in mtllibs:
        mtl_path = obj_path.parent / name
        if not mtl_path.is_file():
            raise MeshFormatError(f'{obj_path}: material library {mtl_path} not found')
        for line in mtl_path.read_text(errors='replace').splitlines():
            words = line.strip().split()
            if words and words[0] == 'map_Kd' and len(words) > 1:
                return mtl_path.parent / words[-1]
    return None


def load_texture(path):
    """(H, W, 3) uint8 RGB texture image; MeshFormatError naming the file when it is missing or undecodable."""
    import cv2
    path = Path(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
    if image is None:
        raise MeshFormatError(f'{path}: texture image missing or not decodable')
    return np.ascontiguousarray(image[..., ::-1])


def write_obj(path, mesh, texture_name=None, mtl_name=None):
    """Write `mesh` as OBJ (+ .mtl naming `texture_name`, and the texture image next to it when it has one).
    Used by the fake releases and tests."""
    import cv2
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    if mesh.texture is not None and texture_name:
        mtl = path.parent / mtl_name if mtl_name else path.with_suffix('.mtl')
        mtl.write_text(f'newmtl material0\nKd 1 1 1\nmap_Kd {texture_name}\n')
        cv2.imwrite(str(path.parent / texture_name), mesh.texture[..., ::-1])
        lines += [f'mtllib {mtl.name}', 'usemtl material0']
    if mesh.vertex_colors is not None:
        lines += [f'v {x:.6f} {y:.6f} {z:.6f} {r:.4f} {g:.4f} {b:.4f}'
                  for (x, y, z), (r, g, b) in zip(mesh.vertices, mesh.vertex_colors)]
    else:
        lines += [f'v {x:.6f} {y:.6f} {z:.6f}' for x, y, z in mesh.vertices]
    if mesh.face_uvs is not None:
        lines += [f'vt {u:.6f} {v:.6f}' for u, v in mesh.uvs]
        lines += [f'f {a + 1}/{ta + 1} {b + 1}/{tb + 1} {c + 1}/{tc + 1}'
                  for (a, b, c), (ta, tb, tc) in zip(mesh.faces, mesh.face_uvs)]
    else:
        lines += [f'f {a + 1} {b + 1} {c + 1}' for a, b, c in mesh.faces]
    path.write_text('\n'.join(lines) + '\n')
