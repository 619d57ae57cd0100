"""Fitting SMPL-family parameters (pose, betas, translation; optionally a scale) to mesh vertices of the model's
topology, e.g. DFAUST's registrations (SMPL topology, no parameters released).

    result = fit_vertices(model, target_vertices_m, n_betas=128)           # (N, V, 3) metres
    result['pose'], result['betas'], result['trans']                        # (N, J*3), (N, b), (N, 3)
    result['vertex_error_m']                                                # (N, V) distances of the fit
    fit_vertices(model, target, n_betas=10, fit_scale=True)['scale']        # X = s * model(pose, betas, trans)

Method (ours; Gauss-Newton on the exact model, the default backend 'gauss-newton'):
1. Initial global rotation of every body part (vertices assigned to the joint of their largest skinning weight)
   by the Kabsch/Procrustes rotation from the rest template's part to the target's part; parts with fewer than 3
   vertices take their parent's rotation. Parent-relative rotations follow; the translation aligns the centroids.
2. Shape and translation by linear least squares: with the rotations fixed, the skinned vertices are EXACTLY
   linear in the betas and the translation (the pose blend shapes do not depend on the betas, the posed joints
   are linear in the rest joints). With a scale, X = s M0 + A (s betas) + s trans is linear in
   (s, s betas, s trans).
3. Two Gauss-Newton steps on the rotations and the translation, the shape solve again, then `n_iterations`
   Gauss-Newton steps on everything at once (rotations, translation, betas, scale): Levenberg-Marquardt damped,
   a step kept only when it lowers the error. The Jacobian is analytic: a small world-axis rotation a of joint j
   moves a vertex by a x (y - W p_j), y its skinned position restricted to j's subtree, W that subtree's
   weight, p_j the posed joint, plus the pose blend shapes' change through R_j; d vertices / d betas as in 2.
   Optimising all parameters jointly matters: alternating pose and shape converges slowly (they are coupled).
On the SMPL-sized toy body of tests/fakes/dfaust.py (128 betas) 3 iterations reach < 0.001 mm mean vertex error
from the toy's own meshes (bench/bench_fitter.py). The residual is measured on the whole mesh, or on
`vertex_subset` for speed (the reported errors are always on all vertices).

Alternative backend 'smplfitter' (optional extra: pip install smplfitter): the field's fitter by NLF's author
(per-part rotations by Procrustes alternating with the linear shape solve; its predecessor,
smpl.tensorflow.full_fitting.Fitter, made the original's DFAUST fits). It needs its own model files;
`smplfitter_model_dir` writes them from a posepile model into a folder (a plain pickle of the arrays, the
official file name, an all-zero kid template, which smplfitter treats as "no kid template").
"""
import time

import numpy as np

from posepile.bodymodels.model import rotvec_to_matrix

BACKENDS = ('gauss-newton', 'smplfitter')
DEFAULT_BACKEND = 'gauss-newton'
DEFAULT_BETA_REGULARIZER = 1e-6  # per beta, in m^2 of summed squared vertex error (a tie-breaker only)


def fit_vertices(model, target_vertices, n_betas=10, *, n_iterations=3, fit_scale=False, vertex_subset=None,
                 beta_regularizer=None, backend=None):
    """Fit `model` (posepile.bodymodels BodyModel) to `target_vertices` ((N, V, 3) or (V, 3), metres, the
    model's topology). Returns a dict of float64 arrays: 'pose' (N, J*3) parent-relative axis-angle, 'betas'
    (N, n_betas), 'trans' (N, 3), 'scale' (N,) (ones without fit_scale), 'vertex_error_m' (N, V) distance of
    each fitted vertex to its target, 'seconds' (wall time of the whole call). Single input -> leading axis kept.
    `vertex_subset`: vertex indices the fit uses (default all; the smplfitter backend always uses all).
    `beta_regularizer`: weight of the betas' squared norm (default 1e-6 for ours, smplfitter's own default 1).
    `backend`: 'gauss-newton' (default) or 'smplfitter' (optional package; n_iterations is its num_iter)."""
    backend = backend or DEFAULT_BACKEND
    if beta_regularizer is None:
        beta_regularizer = DEFAULT_BETA_REGULARIZER if backend == 'gauss-newton' else 1.0  # smplfitter's default
    if backend not in BACKENDS:
        raise ValueError(f'unknown fitter backend {backend!r}: use one of {", ".join(BACKENDS)}')
    target = np.asarray(target_vertices, np.float64)
    if target.ndim == 2:
        target = target[np.newaxis]
    if target.ndim != 3 or target.shape[1:] != (model.n_vertices, 3):
        raise ValueError(f'target vertices have shape {target.shape}, expected (N, {model.n_vertices}, 3) for the '
                         f'{model.model_type} model at {model.path}')
    if not np.all(np.isfinite(target)):
        raise ValueError('target vertices have non-finite values')
    n_betas = min(int(n_betas), model.n_betas)
    start = time.perf_counter()
    if backend == 'smplfitter':
        result = _fit_smplfitter(model, target, n_betas, n_iterations, fit_scale, beta_regularizer)
    else:
        result = _GaussNewtonFitter(model, n_betas, vertex_subset, beta_regularizer).fit(target, n_iterations,
                                                                                         fit_scale)
    fitted = model(result['pose'], result['betas'], result['trans'])['vertices'] * result['scale'][:, None, None]
    result['vertex_error_m'] = np.linalg.norm(fitted - target, axis=-1)
    result['seconds'] = time.perf_counter() - start
    return result


# ------------------------------------------------------------------------------------------------
class _GaussNewtonFitter:
    def __init__(self, model, n_betas, vertex_subset, beta_regularizer):
        self.model, self.n_betas, self.regularizer = model, n_betas, beta_regularizer
        self.subset = np.arange(model.n_vertices) if vertex_subset is None else np.asarray(vertex_subset)
        self.parents = np.asarray(model.parents)
        self.n_joints = model.n_joints
        self.weights = model.weights[self.subset]  # (V, J)
        part = np.argmax(model.weights, axis=1)[self.subset]
        self.parts = [np.flatnonzero(part == j) for j in range(self.n_joints)]
        # subtree indicator S[k, j] = 1 if joint k is j or below j
        self.subtree = np.zeros((self.n_joints, self.n_joints))
        for k in range(self.n_joints):
            j = k
            while j >= 0:
                self.subtree[k, j] = 1
                j = self.parents[j]
        self.subtree_weights = self.weights @ self.subtree  # (V, J)
        from posepile.bodymodels.fitting import shape_blend_shapes
        self.shapedirs = shape_blend_shapes(model, n_betas)[self.subset] if n_betas else \
            np.zeros((len(self.subset), 3, 0))
        self.J_shapedirs = np.einsum('jv,vcb->jcb', model.J_regressor, shape_blend_shapes(model, n_betas)) \
            if n_betas else np.zeros((self.n_joints, 3, 0))
        self.order = [j for j in _topological_order(self.parents)]
        # coordinate-major flat blend shapes of the subset: (b, 3*V) and (9*(J-1), 3*V)
        self.shapedirs_flat = np.ascontiguousarray(self.shapedirs.transpose(2, 1, 0).reshape(n_betas, -1))
        posedirs = np.asarray(model._pose_dirs, np.float64).reshape(-1, 3, model.n_vertices)[:, :, self.subset]
        self.posedirs_flat = np.ascontiguousarray(posedirs.reshape(len(posedirs), -1))
        self.posedirs_blocks = np.ascontiguousarray(posedirs.reshape(self.n_joints - 1, 9, 3, -1)
                                                    .transpose(0, 3, 2, 1).reshape(self.n_joints - 1, -1, 9))
        # (J-1, V*3, 9): row (v, c) of joint j's 9 pose-feature columns

    # -- model pieces ------------------------------------------------------------------------------
    def _forward(self, pose, betas, trans):
        out = self.model(pose, betas, trans, return_orientations=True)
        return out['vertices'][:, self.subset].astype(np.float64), out['joints'], out['orientations']

    def _shape_design(self, glob, joints, trans):
        """(N, V, 3, b) d vertices / d betas and the (N, V, 3) vertices' part that does not depend on betas and
        trans, for the rotations `glob` (N, J, 3, 3)."""
        n = len(glob)
        b = self.n_betas
        d_rest = self.J_shapedirs  # (J, 3, b)
        d_posed = np.zeros((n, self.n_joints, 3, b))
        for j in self.order:
            p = self.parents[j]
            if p < 0:
                d_posed[:, j] = d_rest[j]
            else:
                d_posed[:, j] = d_posed[:, p] + np.einsum('nac,cb->nab', glob[:, p], d_rest[j] - d_rest[p])
        d_trans_k = d_posed - np.einsum('njac,jcb->njab', glob, d_rest)  # d t_k / d betas
        n_vertices = len(self.subset)
        blended = np.matmul(self.weights, glob.reshape(n, self.n_joints, 9)).reshape(n, n_vertices, 3, 3)
        design = sum(blended[..., c, None] * self.shapedirs[None, :, None, c] for c in range(3))
        design += np.matmul(self.weights, d_trans_k.reshape(n, self.n_joints, 3 * b)).reshape(n, n_vertices, 3, b)
        return design

    def _solve_shape(self, pose, betas, trans, target, fit_scale):
        """Exact linear least squares of betas and trans (and scale) for the rotations of `pose`."""
        n, b = len(pose), self.n_betas
        vertices, joints, glob = self._forward(pose, betas, trans)
        design = self._shape_design(glob, joints, trans)
        base = vertices - np.einsum('nvab,nb->nva', design, betas) - trans[:, None]  # M at betas 0, trans 0
        new_betas, new_trans, scales = np.zeros((n, b)), np.zeros((n, 3)), np.ones(n)
        eye = np.tile(np.eye(3), (len(self.subset), 1))
        for i in range(n):
            columns = [design[i].reshape(-1, b), eye]
            if fit_scale:
                columns.append(base[i].reshape(-1, 1))
                rhs = target[i].reshape(-1)
            else:
                rhs = (target[i] - base[i]).reshape(-1)
            A = np.concatenate(columns, axis=1)
            normal = A.T @ A
            normal[np.arange(b), np.arange(b)] += self.regularizer
            solution = np.linalg.solve(normal, A.T @ rhs)
            if fit_scale:
                s = solution[-1]
                scales[i], new_betas[i], new_trans[i] = s, solution[:b] / s, solution[b:b + 3] / s
            else:
                new_betas[i], new_trans[i] = solution[:b], solution[b:b + 3]
        return new_betas, new_trans, scales

    def _steps(self, pose, betas, trans, scale, target, n_steps, with_shape, fit_scale):
        """Damped Gauss-Newton (Levenberg-Marquardt) steps on the joint rotations and the translation, and with
        `with_shape` also the betas (and the scale, with fit_scale); a step is kept only if it lowers the error."""
        n, n_joints, b = len(pose), self.n_joints, self.n_betas
        damping = np.full(n, 1e-4)
        vertices, joints, glob = self._forward(pose, betas, trans)
        residual = scale[:, None, None] * vertices - target
        cost = np.sum(residual ** 2, axis=(1, 2)) + self.regularizer * np.sum(betas ** 2, axis=1)
        n_pose = 3 * n_joints + 3
        for _ in range(n_steps):
            columns = [self._pose_jacobian(pose, betas, trans, glob, joints) * scale[:, None, None, None]]
            if with_shape:
                columns.append(self._shape_design(glob, joints, trans) * scale[:, None, None, None])
                if fit_scale:
                    columns.append(vertices[..., None])
            # normal equations in float32 (2x faster; the step direction only: the residual and the accepted
            # parameters stay float64, so the fit still converges to the float64 optimum)
            jac = np.concatenate(columns, axis=-1).reshape(n, residual[0].size, -1).astype(np.float32)
            jac_t = np.ascontiguousarray(np.swapaxes(jac, 1, 2))
            jtj = np.matmul(jac_t, jac).astype(np.float64)
            jtr = np.matmul(jac_t, residual.reshape(n, -1, 1).astype(np.float32))[..., 0].astype(np.float64)
            if with_shape:
                jtj[:, np.arange(n_pose, n_pose + b), np.arange(n_pose, n_pose + b)] += self.regularizer
                jtr[:, n_pose:n_pose + b] += self.regularizer * betas
            new_pose, new_trans, new_betas, new_scale = pose.copy(), trans.copy(), betas.copy(), scale.copy()
            for i in range(n):
                a = jtj[i] + damping[i] * (np.diag(np.diag(jtj[i])) + 1e-9 * np.eye(len(jtj[i])))
                delta = -np.linalg.solve(a, jtr[i])
                new_pose[i], new_trans[i] = self._apply_step(pose[i], glob[i], trans[i], delta[:n_pose])
                if with_shape:
                    new_betas[i] += delta[n_pose:n_pose + b]
                    if fit_scale:
                        new_scale[i] += delta[-1]
            new_vertices, new_joints, new_glob = self._forward(new_pose, new_betas, new_trans)
            new_residual = new_scale[:, None, None] * new_vertices - target
            new_cost = np.sum(new_residual ** 2, axis=(1, 2)) + self.regularizer * np.sum(new_betas ** 2, axis=1)
            better = new_cost < cost
            pose[better], trans[better], betas[better], scale[better] = (
                new_pose[better], new_trans[better], new_betas[better], new_scale[better])
            vertices[better], glob[better], joints[better], residual[better] = (
                new_vertices[better], new_glob[better], new_joints[better], new_residual[better])
            cost[better] = new_cost[better]
            damping = np.where(better, damping / 10, damping * 10)
        return pose, betas, trans, scale

    def _pose_jacobian(self, pose, betas, trans, glob, joints):
        """(N, V, 3, 3J + 3) d vertices / d (world-axis rotation of each joint's subtree about the joint, trans),
        with the pose blend shapes' part."""
        model = self.model
        n, n_joints, n_vertices = len(pose), self.n_joints, len(self.subset)
        local = rotvec_to_matrix(pose.reshape(n, n_joints, 3))
        pose_feature = (local[:, 1:] - np.eye(3)).reshape(n, -1)
        shaped = model.v_template[self.subset] + (betas @ self.shapedirs_flat).reshape(n, 3, n_vertices) \
            .transpose(0, 2, 1) + (pose_feature @ self.posedirs_flat).reshape(n, 3, n_vertices).transpose(0, 2, 1)
        rest = model.J_template + np.einsum('jcb,nb->njc', self.J_shapedirs, betas)
        posed = joints - trans[:, None]
        offsets = posed - np.einsum('njac,njc->nja', glob, rest)  # t_k
        # per vertex and joint: w_vk (G_k x_v + t_k), summed over each subtree
        per_joint = np.matmul(shaped[:, None], np.swapaxes(glob, -1, -2))  # (N, J, V, 3)
        per_joint = per_joint.transpose(0, 2, 1, 3) + offsets[:, None]
        per_joint *= self.weights[None, :, :, None]
        subtree_sum = np.matmul(per_joint.transpose(0, 1, 3, 2), self.subtree).transpose(0, 1, 3, 2)
        lever = subtree_sum - self.subtree_weights[None, :, :, None] * posed[:, None]  # (N, V, J, 3)
        jac = np.zeros((n, n_vertices, 3, n_joints, 3))
        # d (a x u) / d a = -[u]x
        ux, uy, uz = lever[..., 0], lever[..., 1], lever[..., 2]
        jac[:, :, 0, :, 1], jac[:, :, 0, :, 2] = uz, -uy
        jac[:, :, 1, :, 0], jac[:, :, 1, :, 2] = -uz, ux
        jac[:, :, 2, :, 0], jac[:, :, 2, :, 1] = uy, -ux
        # pose blend shapes: a world-axis step d of joint j >= 1 changes R_j by [G_parent^T d]x R_j
        parent_glob = glob[:, self.parents[1:]]  # (N, J-1, 3, 3)
        axes = np.swapaxes(parent_glob, -1, -2)  # column m = G_parent^T e_m
        d_local = np.stack([_skew(axes[..., m]) @ local[:, 1:] for m in range(3)], axis=-1)  # (N, J-1, 3, 3, 3m)
        d_feature = d_local.reshape(n, n_joints - 1, 9, 3)
        d_shaped = np.matmul(self.posedirs_blocks[None], d_feature)  # (N, J-1, V*3, 3m)
        d_shaped = d_shaped.reshape(n, n_joints - 1, n_vertices, 3, 3).transpose(0, 2, 3, 1, 4)  # (N, V, 3, J-1, 3m)
        blended = np.matmul(self.weights, glob.reshape(n, n_joints, 9)).reshape(n, n_vertices, 3, 3)
        jac[:, :, :, 1:] += np.matmul(blended, d_shaped.reshape(n, n_vertices, 3, -1)).reshape(jac[:, :, :, 1:].shape)
        jac = jac.reshape(n, n_vertices, 3, 3 * n_joints)
        trans_jac = np.broadcast_to(np.eye(3), (n, n_vertices, 3, 3))
        return np.concatenate([jac, trans_jac], axis=-1)

    def _apply_step(self, pose, glob, trans, delta):
        """New (pose, trans) of one frame after rotating each joint's subtree by the world-axis vector delta_j
        (first order: R_j' = G_parent^T exp(delta_j) G_parent R_j)."""
        n_joints = self.n_joints
        local = rotvec_to_matrix(pose.reshape(n_joints, 3))
        step = rotvec_to_matrix(delta[:3 * n_joints].reshape(n_joints, 3))
        new_local = np.empty_like(local)
        for j in range(n_joints):
            p = self.parents[j]
            parent = np.eye(3) if p < 0 else glob[p]
            new_local[j] = parent.T @ step[j] @ parent @ local[j]
        from posepile.bodymodels.transform import matrix_to_rotvec
        return matrix_to_rotvec(new_local).reshape(-1), trans + delta[3 * n_joints:]

    def _initial_pose(self, target):
        """Per-part Kabsch rotations from the rest template to the target, as parent-relative axis-angle."""
        n = len(target)
        template = self.model.v_template[self.subset]
        glob = np.tile(np.eye(3), (n, self.n_joints, 1, 1))
        for j in self.order:
            part = self.parts[j]
            if len(part) >= 3:
                glob[:, j] = _kabsch(template[part], target[:, part])
            elif self.parents[j] >= 0:
                glob[:, j] = glob[:, self.parents[j]]
        local = glob.copy()
        for j in range(self.n_joints):
            p = self.parents[j]
            if p >= 0:
                local[:, j] = np.swapaxes(glob[:, p], -1, -2) @ glob[:, j]
        from posepile.bodymodels.transform import matrix_to_rotvec
        return matrix_to_rotvec(local).reshape(n, -1)

    def fit(self, target_all, n_iterations, fit_scale):
        target = target_all[:, self.subset]
        n = len(target)
        pose = self._initial_pose(target)
        betas = np.zeros((n, self.n_betas))
        trans = np.zeros((n, 3))
        # translation of the initial pose: align the centroids
        vertices, _, _ = self._forward(pose, betas, trans)
        trans = np.mean(target - vertices, axis=1)
        scale = np.ones(n)
        betas, trans, scale = self._solve_shape(pose, betas, trans, target, fit_scale)
        pose, betas, trans, scale = self._steps(pose, betas, trans, scale, target, 2, False, fit_scale)
        betas, trans, scale = self._solve_shape(pose, betas, trans, target, fit_scale)
        pose, betas, trans, scale = self._steps(pose, betas, trans, scale, target, max(int(n_iterations), 1), True,
                                                fit_scale)
        return {'pose': pose, 'betas': betas, 'trans': trans, 'scale': scale}


def _skew(vectors):
    """(..., 3, 3) cross-product matrices [v]x of (..., 3) vectors."""
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    zero = np.zeros_like(x)
    return np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)


def _kabsch(source, targets):
    """(N, 3, 3) rotations R minimising |R (source - mean) - (target - mean)| for (P, 3) source and (N, P, 3)."""
    a = source - source.mean(axis=0)
    b = targets - targets.mean(axis=1, keepdims=True)
    cov = np.einsum('pa,npb->nba', a, b)  # sum b a^T
    u, _, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    correction = np.tile(np.eye(3), (len(targets), 1, 1))
    correction[:, 2, 2] = d
    return u @ correction @ vt


def _topological_order(parents):
    order, seen = [], set()
    for j in range(len(parents)):
        chain = []
        k = j
        while k >= 0 and k not in seen:
            chain.append(k)
            k = parents[k]
        for k in reversed(chain):
            seen.add(k)
            order.append(k)
    return order


# ------------------------------------------------------------------------------------------------
SMPLFITTER_FILENAMES = {
    ('smpl', 'female'): 'basicmodel_f_lbs_10_207_0_v1.1.0.pkl',
    ('smpl', 'male'): 'basicmodel_m_lbs_10_207_0_v1.1.0.pkl',
    ('smpl', 'neutral'): 'basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl',
    ('smplx', 'female'): 'SMPLX_FEMALE.npz', ('smplx', 'male'): 'SMPLX_MALE.npz',
    ('smplx', 'neutral'): 'SMPLX_NEUTRAL.npz',
    ('smplh', 'female'): 'SMPLH_female.pkl', ('smplh', 'male'): 'SMPLH_male.pkl',
}


def smplfitter_model_dir(model, folder):
    """Write `model` (posepile BodyModel) into `folder` as smplfitter expects it (its file name for the model type
    and gender, plain numpy arrays, an all-zero kid_template.npy); returns the folder (smplfitter's model_root)."""
    import pickle
    from pathlib import Path
    from posepile.bodymodels.fitting import shape_blend_shapes
    key = (model.model_type, model.gender)
    if key not in SMPLFITTER_FILENAMES:
        raise ValueError(f'smplfitter has no {model.model_type} {model.gender} model')
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shapedirs = shape_blend_shapes(model)
    if model.n_expression:
        flat = np.asarray(model._expr_dirs, np.float64)
        expression = flat.reshape(model.n_expression, 3, model.n_vertices).transpose(2, 1, 0)
        shapedirs = np.concatenate([shapedirs, expression], axis=-1)
    posedirs = np.asarray(model._pose_dirs, np.float64).reshape(-1, 3, model.n_vertices).transpose(2, 1, 0)
    arrays = {'v_template': model.v_template, 'shapedirs': shapedirs, 'posedirs': posedirs,
              'J_regressor': model.J_regressor, 'weights': model.weights,
              'kintree_table': np.stack([np.where(model.parents < 0, -1, model.parents), np.arange(model.n_joints)]),
              'f': model.faces}
    path = folder / SMPLFITTER_FILENAMES[key]
    if path.suffix == '.npz':
        np.savez(path, **arrays)
    else:
        with open(path, 'wb') as f:
            pickle.dump(arrays, f, protocol=4)
    np.save(folder / 'kid_template.npy', np.zeros_like(model.v_template))
    return folder


def _fit_smplfitter(model, target, n_betas, n_iterations, fit_scale, beta_regularizer):
    import tempfile
    try:
        import smplfitter.np
    except ImportError:
        raise ImportError('the smplfitter backend needs the optional package: pip install smplfitter') from None
    with tempfile.TemporaryDirectory() as folder:
        smplfitter_model_dir(model, folder)
        body_model = smplfitter.np.BodyModel(model.model_type, model.gender, model_root=folder, num_betas=n_betas)
    fitter = smplfitter.np.BodyFitter(body_model)
    result = fitter.fit(target.astype(np.float32), num_iter=max(int(n_iterations), 1),
                        beta_regularizer=beta_regularizer, scale_fit=fit_scale,
                        requested_keys=('pose_rotvecs', 'shape_betas', 'trans'))
    n = len(target)
    scale = np.asarray(result['scale_corr'], np.float64).reshape(n) if fit_scale else np.ones(n)
    return {'pose': np.asarray(result['pose_rotvecs'], np.float64).reshape(n, -1),
            'betas': np.asarray(result['shape_betas'], np.float64).reshape(n, n_betas),
            'trans': np.asarray(result['trans'], np.float64).reshape(n, 3), 'scale': scale}
