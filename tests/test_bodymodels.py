"""posepile.bodymodels on toy models written by the test in the official file layouts and keys (a few vertices, the
real 24 / 52 / 55-joint kinematic trees), checked against hand-computed cases."""
import contextlib
import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
from scipy.spatial.transform import Rotation

from posepile import bodymodels
from posepile.bodymodels import BodyModelFormatError, BodyModelNotFoundError

# kinematic trees of the official models (smplx library / model files' kintree_table)
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
SMPLH_PARENTS = SMPL_PARENTS[:22] + [20, 22, 23, 20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35,
                                     21, 37, 38, 21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50]
SMPLX_PARENTS = SMPL_PARENTS[:22] + [15, 15, 15, 20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
                                     21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53]
PARENTS = {'smpl': SMPL_PARENTS, 'smplh': SMPLH_PARENTS, 'smplx': SMPLX_PARENTS}
N_EXTRA_VERTICES = 10
ROOT_ID = 4294967295  # the root's parent id in the official kintree_table
BLENDED_JOINTS = [4, 20, 15]  # the last 3 toy vertices are skinned half to these joints, half to their parents


def toy_arrays(model_type, n_shape, seed=0):
    """Model arrays: vertex j < J sits near joint j, J_regressor regresses each joint from 2 vertices, every vertex
    is skinned to one joint except the last 3 (split between a joint and its parent, BLENDED_JOINTS)."""
    parents = PARENTS[model_type]
    n_joints = len(parents)
    n_vertices = n_joints + N_EXTRA_VERTICES
    rng = np.random.default_rng(seed)
    v_template = rng.normal(0, 0.3, (n_vertices, 3))
    regressor = np.zeros((n_joints, n_vertices))
    regressor[np.arange(n_joints), np.arange(n_joints)] = 0.75
    regressor[np.arange(n_joints), n_joints + np.arange(n_joints) % N_EXTRA_VERTICES] = 0.25
    weights = np.zeros((n_vertices, n_joints))
    weights[np.arange(n_joints), np.arange(n_joints)] = 1
    for v in range(n_joints, n_vertices - 3):
        weights[v, (v * 7) % n_joints] = 1
    for v, j in zip(range(n_vertices - 3, n_vertices), BLENDED_JOINTS):
        weights[v, [j, parents[j]]] = 0.5
    return {'v_template': v_template, 'shapedirs': rng.normal(0, 0.05, (n_vertices, 3, n_shape)),
            'posedirs': rng.normal(0, 0.02, (n_vertices, 3, (n_joints - 1) * 9)), 'J_regressor': regressor,
            'weights': weights, 'kintree_table': np.array([[ROOT_ID] + parents[1:], range(n_joints)], np.int64),
            'f': rng.integers(0, n_vertices, (16, 3)).astype(np.uint32)}


@contextlib.contextmanager
def fake_chumpy():
    """Importable stand-ins for chumpy.ch.Ch and chumpy.reordering.Select, only while pickling."""
    modules = {name: types.ModuleType(name) for name in ('chumpy', 'chumpy.ch', 'chumpy.reordering')}
    for module, name in (('chumpy.ch', 'Ch'), ('chumpy.reordering', 'Select')):
        cls = type(name, (), {'__module__': module})
        setattr(modules[module], name, cls)
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield modules['chumpy.ch'].Ch, modules['chumpy.reordering'].Select
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name)
            else:
                sys.modules[name] = module


def chumpy_like(cls, **state):
    obj = cls.__new__(cls)
    obj.__dict__.update({'_dirty_vars': set(), '_itr': None, '_parents': {}, '_cache': {'r': None, 'drs': {}}})
    obj.__dict__.update(state)
    return obj


def write_official_pickle(path, arrays, protocol=2, chumpy='Ch'):
    """The SMPL / SMPL+H .pkl layout: shapedirs a chumpy object, J_regressor a scipy.sparse csc matrix."""
    content = dict(arrays, J_regressor=scipy.sparse.csc_matrix(arrays['J_regressor']), bs_style='lbs',
                   bs_type='lrotmin')
    path.parent.mkdir(parents=True, exist_ok=True)
    with fake_chumpy() as (Ch, Select):
        if chumpy == 'Ch':
            content['shapedirs'] = chumpy_like(Ch, x=arrays['shapedirs'])
        elif chumpy == 'Select':  # Select(a, idxs): a.ravel()[idxs], reshaped
            order = np.random.default_rng(1).permutation(arrays['shapedirs'].size)
            source = np.empty(arrays['shapedirs'].size)
            source[order] = arrays['shapedirs'].ravel()
            content['shapedirs'] = chumpy_like(Select, a=chumpy_like(Ch, x=source), idxs=order,
                                               preferred_shape=arrays['shapedirs'].shape)
        with open(path, 'wb') as f:
            pickle.dump(content, f, protocol=protocol)
    return path


def write_npz(path, arrays, **extra):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays, **extra)
    return path


@pytest.fixture(scope='module')
def toys(tmp_path_factory):
    """{model_type: (arrays, folder)}: SMPL v1.1.0 .pkl with a chumpy Ch (protocol 2), SMPL+H .pkl from the MANO
    package with a chumpy Select (protocol 0), SMPL-X .npz with 300 shape + 100 expression columns and object
    arrays among the keys."""
    root = tmp_path_factory.mktemp('body_models')
    smpl, smplh, smplx = toy_arrays('smpl', 10), toy_arrays('smplh', 10, 1), toy_arrays('smplx', 400, 2)
    write_official_pickle(root / 'smpl' / 'basicmodel_f_lbs_10_207_0_v1.1.0.pkl', smpl)
    write_official_pickle(root / 'smplh' / 'SMPLH_female.pkl', smplh, protocol=0, chumpy='Select')
    write_npz(root / 'smplx' / 'SMPLX_NEUTRAL.npz', smplx, joint2num=np.array({'pelvis': 0}, object),
              hands_meanl=np.zeros(45))
    return {'smpl': (smpl, root / 'smpl', 'female'), 'smplh': (smplh, root / 'smplh', 'female'),
            'smplx': (smplx, root / 'smplx', 'neutral')}


def rot_z90(v):
    """90 degrees about z, by hand: (x, y, z) -> (-y, x, z)."""
    return np.stack([-v[..., 1], v[..., 0], v[..., 2]], axis=-1)


def rot_x90(v):
    """90 degrees about x, by hand: (x, y, z) -> (x, -z, y)."""
    return np.stack([v[..., 0], -v[..., 2], v[..., 1]], axis=-1)


def descendants(parents, joint):
    result = {joint}
    for j, p in enumerate(parents):
        if p in result:
            result.add(j)
    return sorted(result)


# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('model_type', ['smpl', 'smplh', 'smplx'])
def test_zero_pose_gives_the_shaped_template(toys, model_type):
    arrays, folder, gender = toys[model_type]
    model = bodymodels.load(model_type, gender, folder)
    n_joints = len(PARENTS[model_type])
    assert (model.n_joints, model.n_vertices) == (n_joints, n_joints + N_EXTRA_VERTICES)
    rng = np.random.default_rng(5)
    betas, trans = rng.normal(0, 1, (3, 10)), rng.normal(0, 1, (3, 3))
    out = model(np.zeros((3, n_joints * 3)), betas, trans)
    v_shaped = arrays['v_template'] + np.einsum('vcb,nb->nvc', arrays['shapedirs'][..., :10], betas)
    expected_joints = np.einsum('jv,nvc->njc', arrays['J_regressor'], v_shaped) + trans[:, None]
    np.testing.assert_allclose(out['joints'], expected_joints, atol=1e-12)
    np.testing.assert_allclose(out['vertices'], v_shaped + trans[:, None], atol=1e-6)
    assert out['joints'].shape == (3, n_joints, 3) and out['vertices'].dtype == np.float32
    np.testing.assert_array_equal(model.parents, PARENTS[model_type])


def test_90_degree_knee_rotation_moves_only_its_children_as_computed_by_hand(toys):
    arrays, folder, _ = toys['smpl']
    model = bodymodels.load('smpl', 'female', folder)
    knee, ankle, foot = 4, 7, 10  # left_knee -> left_ankle -> left_foot
    pose = np.zeros((1, 72))
    pose[0, knee * 3 + 2] = np.pi / 2
    out = model(pose, np.zeros(10), np.zeros(3), return_orientations=True)
    rest = arrays['J_regressor'] @ arrays['v_template']
    joints = out['joints'][0]
    for j in range(24):
        if j not in (ankle, foot):
            np.testing.assert_allclose(joints[j], rest[j], atol=1e-12)
    for j in (ankle, foot):
        np.testing.assert_allclose(joints[j], rest[knee] + rot_z90(rest[j] - rest[knee]), atol=1e-12)
    rz = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    for j in (knee, ankle, foot):
        np.testing.assert_allclose(out['orientations'][0, j], rz, atol=1e-12)

    # vertices: pose blend shapes with R - I of the knee (entries by hand), then skinning
    r_minus_i = np.array([[-1, -1, 0], [1, -1, 0], [0, 0, 0]]).ravel()
    v_posed = arrays['v_template'] + arrays['posedirs'][..., (knee - 1) * 9:knee * 9] @ r_minus_i
    vertices = out['vertices'][0]
    for v in range(model.n_vertices):
        w = arrays['weights'][v]
        moved = rest[knee] + rot_z90(v_posed[v] - rest[knee])
        expected = sum(w[j] * (moved if j in (knee, ankle, foot) else v_posed[v]) for j in np.flatnonzero(w))
        np.testing.assert_allclose(vertices[v], expected, atol=1e-6)
    assert np.any(arrays['weights'][:, [knee, ankle, foot]].sum(1) == 0.5)  # a knee/hip vertex was checked


@pytest.mark.parametrize('model_type,joint,moved', [
    ('smplh', 20, list(range(22, 37))),  # left wrist -> the 15 left-hand joints
    ('smplx', 21, list(range(40, 55))),  # right wrist -> the 15 right-hand joints
    ('smplx', 15, [22, 23, 24]),  # head -> jaw and both eyes
])
def test_hand_and_face_chains(toys, model_type, joint, moved):
    arrays, folder, gender = toys[model_type]
    model = bodymodels.load(model_type, gender, folder)
    assert descendants(PARENTS[model_type], joint)[1:] == moved
    pose = np.zeros((1, model.n_joints, 3))
    pose[0, joint] = [np.pi / 2, 0, 0]
    joints = model(pose, return_vertices=False)['joints'][0]
    rest = arrays['J_regressor'] @ arrays['v_template']
    for j in range(model.n_joints):
        expected = rest[joint] + rot_x90(rest[j] - rest[joint]) if j in moved else rest[j]
        np.testing.assert_allclose(joints[j], expected, atol=1e-12)


def test_root_rotation_turns_the_body_about_the_pelvis_then_adds_trans(toys):
    arrays, folder, _ = toys['smpl']
    model = bodymodels.load('smpl', 'female', folder)
    pose = np.zeros((1, 72))
    pose[0, 1] = np.pi  # 180 degrees about y: (x, y, z) -> (-x, y, -z)
    trans = np.array([[1.0, 2.0, 3.0]])
    joints = model(pose, None, trans, return_vertices=False)['joints'][0]
    rest = arrays['J_regressor'] @ arrays['v_template']
    offset = rest - rest[0]
    expected = rest[0] + np.stack([-offset[:, 0], offset[:, 1], -offset[:, 2]], axis=1) + trans
    np.testing.assert_allclose(joints, expected, atol=1e-12)


@pytest.mark.parametrize('model_type', ['smpl', 'smplh', 'smplx'])
def test_random_poses_match_an_independent_chain_and_joints_only_path(toys, model_type):
    arrays, folder, gender = toys[model_type]
    model = bodymodels.load(model_type, gender, folder)
    rng = np.random.default_rng(3)
    n, parents = 5, PARENTS[model_type]
    pose, betas, trans = rng.normal(0, 0.7, (n, model.n_joints * 3)), rng.normal(0, 1, (n, 4)), rng.normal(0, 1, 3)
    full = model(pose, betas, trans, return_orientations=True)
    fast = model(pose, betas, trans, return_vertices=False)
    assert sorted(fast) == ['joints'] and sorted(full) == ['joints', 'orientations', 'vertices']
    np.testing.assert_allclose(fast['joints'], full['joints'], atol=1e-12)
    rest = np.einsum('jv,nvc->njc', arrays['J_regressor'],
                     arrays['v_template'] + np.einsum('vcb,nb->nvc', arrays['shapedirs'][..., :4], betas))
    for i in range(n):
        local = Rotation.from_rotvec(pose[i].reshape(-1, 3)).as_matrix()
        glob, posed = [local[0]], [rest[i, 0]]
        for j in range(1, model.n_joints):
            p = parents[j]
            posed.append(posed[p] + glob[p] @ (rest[i, j] - rest[i, p]))
            glob.append(glob[p] @ local[j])
        np.testing.assert_allclose(full['joints'][i], np.array(posed) + trans, atol=1e-12)
        np.testing.assert_allclose(full['orientations'][i], np.array(glob), atol=1e-12)
    # the regressor on posed vertices is a different joint definition
    assert np.abs(model.joints_from_vertices(full['vertices']) - full['joints']).max() > 1e-3


def test_rotvec_to_matrix_matches_scipy_including_tiny_angles():
    rng = np.random.default_rng(0)
    rotvecs = np.concatenate([rng.normal(0, 2, (100, 3)), rng.normal(0, 1e-9, (5, 3)), np.zeros((1, 3)),
                              [[np.pi, 0, 0], [0, 0, -np.pi]]])
    np.testing.assert_allclose(bodymodels.rotvec_to_matrix(rotvecs), Rotation.from_rotvec(rotvecs).as_matrix(),
                               atol=1e-14)


def test_agrees_with_the_tdpw_smpl_joints(tmp_path, toys):
    """3DPW / HUMBI compute SMPL joints with posepile.ds.tdpw.main.smpl_joints: the new API gives the same joints."""
    from posepile.ds.tdpw import main as tdpw
    arrays = toys['smpl'][0]
    path = tmp_path / 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(arrays, J_regressor=scipy.sparse.csc_matrix(arrays['J_regressor'])), f, protocol=2)
    rng = np.random.default_rng(4)
    pose, betas, trans = rng.normal(0, 0.5, (6, 72)), rng.normal(0, 1, 10), rng.normal(0, 1, (6, 3))
    old = tdpw.smpl_joints(tdpw.load_smpl_model(path), pose, betas, trans)
    new = bodymodels.load('smpl', 'neutral', tmp_path)(pose, betas, trans, return_vertices=False)['joints']
    np.testing.assert_allclose(new, old, atol=1e-12)


def test_smplx_shape_and_expression_spaces(toys, tmp_path):
    arrays, folder, _ = toys['smplx']
    model = bodymodels.load('smplx', 'neutral', folder)
    assert (model.n_betas, model.n_expression) == (300, 100)
    rng = np.random.default_rng(6)
    betas, expression = rng.normal(0, 1, (2, 16)), rng.normal(0, 1, (2, 10))
    out = model(np.zeros((2, 165)), betas, expression=expression)
    dirs = arrays['shapedirs']
    expected = (arrays['v_template'] + np.einsum('vcb,nb->nvc', dirs[..., :16], betas)
                + np.einsum('vcb,nb->nvc', dirs[..., 300:310], expression))
    np.testing.assert_allclose(out['vertices'], expected, atol=1e-6)
    np.testing.assert_allclose(out['joints'], np.einsum('jv,nvc->njc', arrays['J_regressor'], expected), atol=1e-12)
    # SMPL-X v1.0 files: 10 shape then 10 expression columns
    write_npz(tmp_path / 'SMPLX_MALE.npz', dict(arrays, shapedirs=dirs[..., :20]))
    old = bodymodels.load('smplx', 'male', tmp_path)
    assert (old.n_betas, old.n_expression) == (10, 10)
    with pytest.raises(ValueError, match='16 betas given'):
        old(np.zeros((2, 165)), betas)


def test_official_pickles_load_without_chumpy(toys):
    assert 'chumpy' not in sys.modules
    for model_type in ('smpl', 'smplh'):  # chumpy Ch (protocol 2) and Select (protocol 0)
        arrays, folder, gender = toys[model_type]
        model = bodymodels.load(model_type, gender, folder)
        np.testing.assert_allclose(model._shape_dirs, bodymodels.model._flat_dirs(arrays['shapedirs']))
        np.testing.assert_allclose(model.J_regressor, arrays['J_regressor'])
    assert 'chumpy' not in sys.modules


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.makedirs, (self.marker,)


def test_a_pickle_with_code_is_refused_without_running_it(tmp_path, toys):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'SMPL_NEUTRAL.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(toys['smpl'][0], weights=_Exploit(str(marker))), f, protocol=2)
    with pytest.raises(BodyModelFormatError, match='SMPL_NEUTRAL.pkl.*refusing to load the global') as error:
        bodymodels.load('smpl', 'neutral', tmp_path)
    assert not marker.exists() and '\n' not in str(error.value)


@pytest.mark.parametrize('model_type,gender,names,url', [
    ('smpl', 'neutral', ['SMPL_NEUTRAL.pkl', 'basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl'], 'smpl.is.tue.mpg.de'),
    ('smplh', 'male', ['SMPLH_male.pkl', 'SMPLH_MALE.npz'], 'mano.is.tue.mpg.de'),
    ('smplx', 'female', ['SMPLX_FEMALE.npz'], 'smpl-x.is.tue.mpg.de'),
])
def test_missing_file_gives_one_line_naming_the_files_and_the_site(tmp_path, model_type, gender, names, url):
    with pytest.raises(BodyModelNotFoundError) as error:
        bodymodels.load(model_type, gender, tmp_path)
    message = str(error.value)
    assert '\n' not in message and str(tmp_path) in message and f'https://{url}' in message
    assert all(name in message for name in names)
    assert isinstance(error.value, FileNotFoundError)


def test_file_names_folders_and_genders(tmp_path, toys, monkeypatch):
    arrays = toys['smpl'][0]
    write_official_pickle(tmp_path / 'body_models' / 'smpl' / 'SMPL_MALE.pkl', arrays)
    write_official_pickle(tmp_path / 'old' / 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl', arrays)
    extended = toy_arrays('smplh', 16, 3)  # the extended SMPL+H: 16 betas, J_regressor a pickled sparse object
    sparse = np.array(scipy.sparse.csc_matrix(extended['J_regressor']), object)
    write_npz(tmp_path / 'smplh' / 'neutral' / 'model.npz', dict(extended, J_regressor=sparse))
    write_npz(tmp_path / 'bad' / 'neutral' / 'model.npz', dict(extended, J_regressor=sparse.item()[:1]))
    assert bodymodels.load('smpl', 'm', tmp_path / 'body_models').path.name == 'SMPL_MALE.pkl'  # smpl/ subfolder
    assert bodymodels.load('SMPL', 'Neutral', tmp_path / 'old').gender == 'neutral'
    direct = tmp_path / 'old' / 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl'
    assert bodymodels.load('smpl', 'neutral', direct).path == direct
    monkeypatch.setenv('DATA_ROOT', str(tmp_path))
    assert bodymodels.load('smpl', 'male').path.name == 'SMPL_MALE.pkl'
    smplh = bodymodels.load('smplh', 'neutral', tmp_path)
    assert smplh.n_betas == 16 and smplh.path.parts[-3:] == ('smplh', 'neutral', 'model.npz')
    np.testing.assert_array_equal(smplh.J_regressor, extended['J_regressor'])
    with pytest.raises(BodyModelFormatError, match=r'model.npz: J_regressor has shape \(1, 62\), expected \(52, 62\)'):
        bodymodels.load('smplh', 'neutral', tmp_path / 'bad')
    with pytest.raises(BodyModelFormatError, match='unknown gender'):
        bodymodels.load('smpl', 'other', tmp_path)


def test_malformed_files_and_inputs(tmp_path, toys):
    arrays, folder, _ = toys['smpl']
    write_npz(tmp_path / 'SMPL_NEUTRAL.npz', dict(arrays, posedirs=arrays['posedirs'][..., :200]))
    with pytest.raises(BodyModelFormatError, match=r'SMPL_NEUTRAL.npz: posedirs has shape .*expected \(34, 3, 207\)'):
        bodymodels.load('smpl', 'neutral', tmp_path)
    (tmp_path / 'SMPLX_NEUTRAL.npz').write_bytes(b'not a zip')
    with pytest.raises(BodyModelFormatError, match='SMPLX_NEUTRAL.npz: cannot read'):
        bodymodels.load('smplx', 'neutral', tmp_path)
    model = bodymodels.load('smpl', 'female', folder)
    with pytest.raises(ValueError, match=r'pose_rotvecs has shape \(2, 66\), expected \(N, 72\)'):
        model(np.zeros((2, 66)))
    with pytest.raises(ValueError, match='11 betas given'):
        model(np.zeros((2, 72)), np.zeros((2, 11)))
    empty = model(np.zeros((0, 72)), np.zeros((0, 10)), np.zeros((0, 3)))
    assert empty['joints'].shape == (0, 24, 3) and empty['vertices'].shape == (0, 34, 3)
