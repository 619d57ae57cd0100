"""SMPL-family forward kinematics and linear blend skinning in NumPy, vectorised over parameter sets.

Conventions (those of the official models and of the smplx library):
- `pose_rotvecs` (N, n_joints*3): parent-relative axis-angle rotations of all joints in the model's joint order,
  root first. The full rotations are used as given (no PCA hand components, no hand mean is added: a zero
  pose is the model's template pose, flat hands for SMPL+H/SMPL-X).
- `betas` (N, b): the first b shape coefficients (b <= n_betas; missing ones are zero). For SMPL-X the shape space is
  the first 300 columns of shapedirs and the optional `expression` coefficients start at column 300 (the 20-column
  SMPL-X v1.0 files: 10 shape, then 10 expression).
- `trans` (N, 3) is added last. Everything is in the model files' units, metres.
- Joints are the skeleton's joint locations: the forward kinematics of the rest joints J = J_regressor @ v_shaped
  (v_shaped = v_template + shapedirs . betas), i.e. smplx's `joints[:, :n_joints]` and SMPL's `J_transformed`.
  They are NOT J_regressor applied to the posed vertices (that differs by millimetres, as pose blend shapes and
  skinning move the vertices); use `joints_from_vertices` for that.
- Vertices: v_posed = v_shaped + posedirs . (R_j - I for the non-root joints, row-major), then linear blend skinning
  with `weights` by the global transforms that map the rest joints to the posed joints. Vertices are computed and
  returned in float32 (half the memory, 83 kB per SMPL mesh, and ~2x faster; errors < 1e-6 m within 10 m of the
  origin); joints and orientations in float64.
"""
import numpy as np

from posepile.bodymodels.loading import joint_depths

JOINTS_CHUNK = 8192  # parameter sets per chunk in the joints-only path (bounds memory, stays cache-friendly)
VERTICES_CHUNK = 128  # parameter sets per chunk when vertices are computed
VERTEX_DTYPE = np.float32
SMPLX_SHAPE_SPACE_DIM = 300  # smplx library: SMPL-X shapedirs = 300 shape then 100 expression columns


def rotvec_to_matrix(rotvecs):
    """(..., 3, 3) rotation matrices from (..., 3) axis-angle vectors (Rodrigues), stable near zero angle:
    R = cos(t) I + sinc(t) [r]x + (1 - cos t) / t^2 r r^T, with (1 - cos t) / t^2 = sinc(t / 2)^2 / 2."""
    r = np.asarray(rotvecs, np.float64)
    angle = np.sqrt(np.sum(r * r, axis=-1))
    cos = np.cos(angle)
    sinc = np.sinc(angle / np.pi)  # sin(t) / t
    half = np.sinc(angle / (2 * np.pi))
    versine = 0.5 * half * half  # (1 - cos t) / t^2
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    result = np.empty(r.shape[:-1] + (3, 3))
    vx, vy, vz = versine * x, versine * y, versine * z
    sx, sy, sz = sinc * x, sinc * y, sinc * z
    result[..., 0, 0] = cos + vx * x
    result[..., 1, 1] = cos + vy * y
    result[..., 2, 2] = cos + vz * z
    result[..., 0, 1] = vx * y - sz
    result[..., 1, 0] = vx * y + sz
    result[..., 0, 2] = vx * z + sy
    result[..., 2, 0] = vx * z - sy
    result[..., 1, 2] = vy * z - sx
    result[..., 2, 1] = vy * z + sx
    return result


class BodyModel:
    """A loaded SMPL, SMPL+H or SMPL-X model; call it as `model(pose_rotvecs, betas, trans)`.

    Attributes: model_type, gender, path, n_joints, n_vertices, n_betas (shape coefficients available),
    n_expression (SMPL-X expression coefficients, else 0), parents (root -1), faces, v_template, J_regressor,
    weights, J_template (rest joints of the mean shape).
    """

    def __init__(self, v_template, shapedirs, posedirs, J_regressor, weights, parents, faces, *,
                 model_type='smpl', gender='neutral', path=None):
        self.model_type, self.gender, self.path = model_type, gender, path
        self.v_template = np.asarray(v_template, np.float64)
        self.J_regressor = np.asarray(J_regressor, np.float64)
        self.weights = np.asarray(weights, np.float64)
        self.parents = np.asarray(parents, np.int64)
        self.faces = np.asarray(faces, np.int64)
        self.n_joints, self.n_vertices = len(self.parents), len(self.v_template)
        shapedirs = np.asarray(shapedirs, np.float64)
        shape_cols, expr_cols = _shape_and_expression_columns(model_type, shapedirs.shape[-1])
        self.n_betas, self.n_expression = shape_cols.stop, expr_cols.stop - expr_cols.start
        # vertex path in float32 (half the memory traffic, ~2x faster; < 1e-6 m error), flat coordinate-major
        # (coefficients, 3*V) matrices: a row slice [:b] is contiguous, so few betas cost little
        self._shape_dirs = _flat_dirs(shapedirs[..., shape_cols])
        self._expr_dirs = _flat_dirs(shapedirs[..., expr_cols])
        self._pose_dirs = _flat_dirs(np.asarray(posedirs))
        self._template_flat = self.v_template.T.reshape(-1).astype(VERTEX_DTYPE)
        self._weights_t = np.ascontiguousarray(self.weights.T, VERTEX_DTYPE)
        self.J_template = self.J_regressor @ self.v_template
        self._J_shape_dirs = np.einsum('jv,vcb->bjc', self.J_regressor, shapedirs[..., shape_cols])
        self._J_expr_dirs = np.einsum('jv,vcb->bjc', self.J_regressor, shapedirs[..., expr_cols])
        self._levels = _levels(self.parents)
        self._root = int(np.flatnonzero(self.parents < 0)[0])

    def __repr__(self):
        return (f'BodyModel({self.model_type}, {self.gender}, {self.n_joints} joints, {self.n_vertices} vertices, '
                f'{self.n_betas} betas, path={str(self.path)!r})')

    def __call__(self, pose_rotvecs, betas=None, trans=None, *, expression=None, return_vertices=True,
                 return_orientations=False):
        """Dict with 'joints' (N, n_joints, 3) float64 and, if return_vertices, 'vertices' (N, n_vertices, 3)
        float32, in metres; if return_orientations, 'orientations' (N, n_joints, 3, 3), the global joint rotations.
        Inputs: see the module docstring; betas, trans and expression may also be one vector for all N.
        return_vertices=False skips the mesh (about 50-100x faster)."""
        pose = self._check_pose(pose_rotvecs)
        n = len(pose)
        betas = self._check_coefficients(betas, n, self.n_betas, 'betas')
        expression = self._check_coefficients(expression, n, self.n_expression, 'expression')
        trans = np.zeros((n, 3)) if trans is None else np.broadcast_to(np.asarray(trans, np.float64), (n, 3))
        chunk = VERTICES_CHUNK if return_vertices else JOINTS_CHUNK
        parts = [self._forward(pose[i:i + chunk], betas[i:i + chunk], expression[i:i + chunk],
                               trans[i:i + chunk], return_vertices) for i in range(0, max(n, 1), chunk)]
        keys = ['joints'] + ['vertices'] * return_vertices + ['orientations'] * return_orientations
        return {key: np.concatenate([p[key] for p in parts]) for key in keys}

    def joints_from_vertices(self, vertices):
        """(N, n_joints, 3) J_regressor applied to (N, n_vertices, 3) posed vertices (not the skeleton joints)."""
        return np.einsum('jv,nvc->njc', self.J_regressor, vertices)

    # --------------------------------------------------------------------------------------------
    def _check_pose(self, pose_rotvecs):
        pose = np.asarray(pose_rotvecs, np.float64)
        if pose.ndim == 3 and pose.shape[1:] == (self.n_joints, 3):
            pose = pose.reshape(len(pose), -1)
        if pose.ndim != 2 or pose.shape[1] != self.n_joints * 3:
            raise ValueError(f'pose_rotvecs has shape {pose.shape}, expected (N, {self.n_joints * 3}) for '
                             f'{self.model_type} ({self.n_joints} joints x 3)')
        return pose

    def _check_coefficients(self, values, n, n_max, what):
        if values is None:
            return np.zeros((n, 0))
        values = np.asarray(values, np.float64)
        values = np.broadcast_to(values, (n, values.shape[-1])) if values.ndim == 1 else values
        if values.ndim != 2 or len(values) != n:
            raise ValueError(f'{what} has shape {values.shape}, expected ({n}, b) for {n} pose(s)')
        if values.shape[1] > n_max:
            raise ValueError(f'{values.shape[1]} {what} given, but the {self.model_type} model at {self.path} '
                             f'has {n_max}')
        return values

    def _rest_joints(self, betas, expression):
        """(N, J, 3) rest joints J_regressor @ v_shaped, from the precomputed regressed template and dirs."""
        joints = np.broadcast_to(self.J_template, (len(betas), self.n_joints, 3))
        if betas.shape[1]:
            joints = joints + np.einsum('nb,bjc->njc', betas, self._J_shape_dirs[:betas.shape[1]])
        if expression.shape[1]:
            joints = joints + np.einsum('nb,bjc->njc', expression, self._J_expr_dirs[:expression.shape[1]])
        return joints

    def _forward(self, pose, betas, expression, trans, return_vertices):
        n, n_joints = len(pose), self.n_joints
        local = rotvec_to_matrix(pose.reshape(n, n_joints, 3).transpose(1, 0, 2))  # (J, N, 3, 3) joint-major
        rest = self._rest_joints(betas, expression).transpose(1, 0, 2)  # (J, N, 3)
        glob = np.empty_like(local)
        posed = np.empty_like(rest)
        glob[self._root], posed[self._root] = local[self._root], rest[self._root]
        for joints, parents in self._levels:
            parent_rot = glob[parents]
            glob[joints] = parent_rot @ local[joints]
            bones = rest[joints] - rest[parents]
            posed[joints] = posed[parents] + np.einsum('knab,knb->kna', parent_rot, bones)
        result = {'joints': posed.transpose(1, 0, 2) + trans[:, np.newaxis],
                  'orientations': glob.transpose(1, 0, 2, 3)}
        if return_vertices:
            vertices = self._skin(local, glob, rest, posed, betas, expression)
            result['vertices'] = vertices + trans[:, np.newaxis].astype(VERTEX_DTYPE)
        return result

    def _skin(self, local, glob, rest, posed, betas, expression):
        """(N, V, 3) linear blend skinning of the shaped and pose-corrected template (before trans). Works in a
        coordinate-major (N, 3, V) layout so that every step is a BLAS product or a contiguous elementwise op."""
        n, n_joints = local.shape[1], self.n_joints
        pose_feature = (local[1:] - np.eye(3)).transpose(1, 0, 2, 3).reshape(n, (n_joints - 1) * 9)
        pose_feature = pose_feature.astype(VERTEX_DTYPE)
        shaped = pose_feature @ self._pose_dirs + self._template_flat
        if betas.shape[1]:
            shaped += betas.astype(VERTEX_DTYPE) @ self._shape_dirs[:betas.shape[1]]
        if expression.shape[1]:
            shaped += expression.astype(VERTEX_DTYPE) @ self._expr_dirs[:expression.shape[1]]
        shaped = shaped.reshape(n, 1, 3, self.n_vertices)
        # per-joint affine transforms [G | posed - G rest] as (N*12, J), blended by the weights in one product
        transforms = np.empty((n, 3, 4, n_joints), VERTEX_DTYPE)
        transforms[:, :, :3] = glob.transpose(1, 2, 3, 0)
        transforms[:, :, 3] = (posed - np.einsum('jnab,jnb->jna', glob, rest)).transpose(1, 2, 0)
        blended = (transforms.reshape(n * 12, n_joints) @ self._weights_t).reshape(n, 3, 4, self.n_vertices)
        vertices = blended[:, :, 3]
        for axis in range(3):
            vertices += blended[:, :, axis] * shaped[:, :, axis]
        return vertices.transpose(0, 2, 1)


def _shape_and_expression_columns(model_type, n_columns):
    """Slices of the shapedirs columns holding the shape and the expression space (the smplx library's rule)."""
    if model_type != 'smplx':
        return slice(0, n_columns), slice(0, 0)
    if n_columns >= SMPLX_SHAPE_SPACE_DIM + 100:
        return slice(0, SMPLX_SHAPE_SPACE_DIM), slice(SMPLX_SHAPE_SPACE_DIM, n_columns)
    n_shape = min(10, n_columns)
    return slice(0, n_shape), slice(n_shape, n_columns)


def _flat_dirs(dirs):
    """(V, 3, K) blend shapes as a contiguous (K, 3*V) matrix, coordinate-major (all x, then all y, then all z)."""
    return np.ascontiguousarray(dirs.transpose(2, 1, 0).reshape(dirs.shape[-1], 3 * len(dirs)), VERTEX_DTYPE)


def _levels(parents):
    """[(joints, their parents)] per depth 1, 2, ...: the chain is evaluated one depth level at a time."""
    depth = joint_depths(parents)
    return [(np.flatnonzero(depth == d), parents[depth == d]) for d in range(1, int(depth.max()) + 1)]
