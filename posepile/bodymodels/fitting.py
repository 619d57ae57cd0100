"""Shape coefficients (betas) of a template mesh by linear least squares on the model's shape blend shapes.

Datasets that release a personalised rest mesh instead of betas (ARCTIC's `meta/subject_vtemplates/*.obj`, MOYO's
custom `v_template`) need betas for the common parameter format. The shape blend shapes are linear:
    v_shaped(betas) = v_template + shapedirs[..., :b] . betas,
so the betas of a rest mesh V (same topology, zero pose, no translation) solve
    min_betas || shapedirs[..., :b] . betas - (V - v_template) ||^2
over all vertex coordinates (optionally weighted per vertex). With `fit_translation` a constant offset is solved
jointly (meshes exported in another origin), reported separately and NOT folded into the betas. The residual RMS
(metres) says how well the model's first b betas explain the mesh: a personalised template with clothes or
scanned detail keeps a residual of millimetres to centimetres.

    betas, info = betas_of_template(model, vertices_m, n_betas=16)
    info['rms_m'], info['max_m'], info['offset_m']
"""
from pathlib import Path

import numpy as np

from posepile.bodymodels.loading import BodyModelFormatError


def shape_blend_shapes(model, n_betas=None):
    """(n_vertices, 3, b) float64 shape blend shapes of a posepile.bodymodels model (b = n_betas, default all;
    for SMPL-X the shape space only, not the expression space)."""
    n_available = model.n_betas
    n_betas = n_available if n_betas is None else int(n_betas)
    if not 0 < n_betas <= n_available:
        raise ValueError(f'{n_betas} betas asked for, but the {model.model_type} model at {model.path} has '
                         f'{n_available}')
    flat = np.asarray(model._shape_dirs[:n_betas], np.float64)  # (b, 3*V) coordinate-major
    return flat.reshape(n_betas, 3, model.n_vertices).transpose(2, 1, 0)


def betas_of_template(model, vertices, n_betas=None, *, vertex_weights=None, fit_translation=False):
    """(betas (b,) float64, info) with v_template + shapedirs . betas closest (least squares) to `vertices`
    ((n_vertices, 3) rest mesh in metres, the model's topology and rest pose). info: 'rms_m' and 'max_m' (residual
    vertex distance), 'offset_m' ((3,) the fitted constant offset, zeros without fit_translation).
    `vertex_weights` (n_vertices,) non-negative per-vertex weights. BodyModelFormatError for a mesh of another
    vertex count or with non-finite values."""
    vertices = np.asarray(vertices, np.float64)
    if vertices.shape != (model.n_vertices, 3):
        raise BodyModelFormatError(f'template mesh has shape {vertices.shape}, but the {model.model_type} model '
                                   f'at {model.path} has {model.n_vertices} vertices')
    if not np.all(np.isfinite(vertices)):
        raise BodyModelFormatError('template mesh has non-finite vertices')
    dirs = shape_blend_shapes(model, n_betas)  # (V, 3, b)
    n_b = dirs.shape[-1]
    design = dirs.reshape(-1, n_b)
    if fit_translation:
        design = np.concatenate([design, np.tile(np.eye(3), (model.n_vertices, 1))], axis=1)
    target = (vertices - model.v_template).reshape(-1)
    if vertex_weights is not None:
        sqrt_w = np.sqrt(np.repeat(np.asarray(vertex_weights, np.float64).reshape(-1), 3))
        solution = np.linalg.lstsq(design * sqrt_w[:, None], target * sqrt_w, rcond=None)[0]
    else:
        solution = np.linalg.lstsq(design, target, rcond=None)[0]
    betas = solution[:n_b]
    offset = solution[n_b:] if fit_translation else np.zeros(3)
    residual = (design @ solution - target).reshape(-1, 3)
    distances = np.linalg.norm(residual, axis=-1)
    return betas, {'rms_m': float(np.sqrt(np.mean(distances ** 2))), 'max_m': float(distances.max()),
                   'offset_m': offset}


def read_obj_vertices(path):
    """(n, 3) float64 vertex positions ('v x y z' lines) of a Wavefront OBJ file, without trimesh (no vertex
    merging or reordering, which would break the model's topology); InputError-compatible one-line
    BodyModelFormatError naming the file when it has no vertices or bad numbers."""
    rows = []
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            for line_number, line in enumerate(f, 1):
                if line.startswith('v '):
                    parts = line.split()
                    try:
                        rows.append([float(x) for x in parts[1:4]])
                    except ValueError:
                        raise BodyModelFormatError(f'{path}: line {line_number}: bad vertex {line.strip()!r}') \
                            from None
    except OSError as e:
        raise BodyModelFormatError(f'{path}: cannot read the OBJ ({e.strerror or e})') from None
    if not rows or any(len(r) != 3 for r in rows):
        raise BodyModelFormatError(f'{path}: no 3D vertices ("v x y z" lines) in the OBJ')
    return np.asarray(rows, np.float64)


def read_ply_vertices(path):
    """(n, 3) float64 vertex positions (the first three properties x, y, z of the `vertex` element) of an ASCII
    or binary little/big-endian PLY file, in file order (rest meshes such as MOYO's v_template; faces and other
    elements after the vertices are ignored). A one-line BodyModelFormatError naming the file when it is not a
    PLY, truncated or has unsupported vertex properties."""
    types = {'char': 'i1', 'int8': 'i1', 'uchar': 'u1', 'uint8': 'u1', 'short': 'i2', 'int16': 'i2',
             'ushort': 'u2', 'uint16': 'u2', 'int': 'i4', 'int32': 'i4', 'uint': 'u4', 'uint32': 'u4',
             'float': 'f4', 'float32': 'f4', 'double': 'f8', 'float64': 'f8'}
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BodyModelFormatError(f'{path}: cannot read the mesh ({e.strerror or e})') from None
    end = data.find(b'end_header')
    if not data.startswith(b'ply') or end < 0:
        raise BodyModelFormatError(f'{path}: not a PLY file (no "ply" magic or end_header)')
    header = data[:end].decode('ascii', 'replace').splitlines()
    body = data[data.index(b'\n', end) + 1:]
    fmt, n_vertices, properties, in_vertex, before = None, None, [], False, True
    for line in header:
        parts = line.split()
        if parts[:1] == ['format']:
            fmt = parts[1]
        elif parts[:1] == ['element']:
            in_vertex = parts[1] == 'vertex'
            if in_vertex:
                n_vertices = int(parts[2])
            elif n_vertices is None:
                before = False
        elif parts[:1] == ['property'] and in_vertex:
            if parts[1] == 'list' or parts[1] not in types:
                raise BodyModelFormatError(f'{path}: unsupported vertex property {line.strip()!r}')
            properties.append((parts[2], types[parts[1]]))
    names = [name for name, _ in properties]
    if fmt is None or not n_vertices or names[:3] != ['x', 'y', 'z'] or not before:
        raise BodyModelFormatError(f'{path}: expected a leading vertex element with x, y, z properties')
    if fmt == 'ascii':
        rows = body.decode('ascii', 'replace').split('\n')[:n_vertices]
        try:
            vertices = np.array([[float(v) for v in row.split()[:3]] for row in rows], np.float64)
        except ValueError:
            raise BodyModelFormatError(f'{path}: bad ASCII vertex values') from None
    elif fmt in ('binary_little_endian', 'binary_big_endian'):
        order = '<' if fmt == 'binary_little_endian' else '>'
        dtype = np.dtype([(name, order + code) for name, code in properties])
        if len(body) < dtype.itemsize * n_vertices:
            raise BodyModelFormatError(f'{path}: truncated ({len(body)} bytes for {n_vertices} vertices)')
        records = np.frombuffer(body, dtype, count=n_vertices)
        vertices = np.stack([records['x'], records['y'], records['z']], axis=1).astype(np.float64)
    else:
        raise BodyModelFormatError(f'{path}: unknown PLY format {fmt!r}')
    if vertices.shape != (n_vertices, 3) or not np.all(np.isfinite(vertices)):
        raise BodyModelFormatError(f'{path}: {len(vertices)} finite vertices of {n_vertices} declared')
    return vertices
