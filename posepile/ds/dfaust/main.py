"""DFAUST: the registrations of 10 subjects' 4D scans (SMPL topology), fitted with gendered SMPL and rendered with
user-provided SMPL UV textures from random views (nlf-era-facts §1.3; NLF's parametric share `dfaust_render`).

Raw layout under $DATA_ROOT/dfaust:
- registrations_f.hdf5, registrations_m.hdf5 (from https://dfaust.is.tue.mpg.de): one dataset per sequence, named
  '<subject>_<sequence>' (e.g. 50004_hips), of shape (V, 3, T) with V = 6890 vertices in metres, plus the shared
  'faces' (F, 3) (DFAUST's own write_sequence_to_obj.py reads `f[sidseq]` and transposes it to (T, V, 3)).
  The file gives the gender: _f female, _m male.
- smpl_uv.obj: the SMPL mesh with UV coordinates (the SMPL website's UV map download; 'vt' lines and 'f v/vt'
  faces). The UVs are per face corner, so the mesh needs no splitting along the seams (the original split the
  vertices into its `smpl_uv.obj`; the image is the same). Its vertex count must equal the registrations'.
- textures/female/*.png|jpg, textures/male/*.png|jpg: SMPL UV texture maps (e.g. SMPLitex's; the original fetched
  200 SMPLitex textures with a gender each). Any texture set in the SMPL UV layout works.

Stages: `render` (per sequence, sharded by sequence: 200 views by default, each of a random frame with a random
texture of the subject's gender; the drawn frames are fitted first, the fits cached in posepile_work/fits/<seq>.npz
with their vertex errors logged; 512x512, posepile.render with the original's view and light distribution,
resumable by view; a sequence whose registration file, textures, UV mesh or SMPL model changed is rendered
again, see posepile.render.stage), `assemble` (all renders as TRAIN).

Fits: posepile.bodymodels.fitter (Gauss-Newton on the exact model; $POSEPILE_FITTER=smplfitter for the optional
smplfitter backend), gendered SMPL with min(128, the model's) betas, as the original's 128-beta gendered fit.
Parameters are in the registrations' frame, which is the world frame of every render's camera (mm):
{'type': 'smpl', gender, pose (72,), shape (128,), trans (3,) m}. The rendered mesh is the registration itself, not
the fit. Frames are drawn with replacement (a sequence shorter than the view count still gets every view).
"""
import functools
import logging
import os
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'dfaust'
REGISTRATION_FILES = {'female': 'registrations_f.hdf5', 'male': 'registrations_m.hdf5'}
UV_MESH = 'smpl_uv.obj'
TEXTURE_DIR = 'textures'
TEXTURE_SUFFIXES = ('.png', '.jpg', '.jpeg')
DEFAULT_VIEWS = 200
N_BETAS = 128
FIT_ITERATIONS = 3
FIT_VERTEX_STRIDE = 2  # the fit uses every 2nd vertex (2-3x faster; errors are measured on all of them)
WORLD_UP = (0, 1, 0)


class DfaustFormatError(InputError):
    """A DFAUST file (registrations, UV mesh, texture) is missing or malformed (one line naming it)."""


# ------------------------------------------------------------------------------------------------
# Readers
def _open_hdf5(path):
    import h5py
    try:
        return h5py.File(path, 'r')
    except FileNotFoundError:
        raise DfaustFormatError(f'{path}: not found') from None
    except OSError as e:
        raise DfaustFormatError(f'{path}: not a readable HDF5 file ({e})') from None


def sequences(root):
    """[(key, gender, n_frames)] of both registration files, sorted by key; one line naming a missing or
    malformed file."""
    root = Path(root)
    found = [root / name for name in REGISTRATION_FILES.values() if (root / name).exists()]
    if not found:
        raise FileNotFoundError(f'{root}: neither {" nor ".join(REGISTRATION_FILES.values())} found: download them '
                                f'from https://dfaust.is.tue.mpg.de (see main.sh)')
    result = []
    for gender, name in REGISTRATION_FILES.items():
        path = root / name
        if not path.exists():
            logger.warning('%s not found: no %s subjects', path, gender)
            continue
        with _open_hdf5(path) as f:
            n_vertices = None
            for key in sorted(f.keys()):
                if key == 'faces':
                    continue
                shape = f[key].shape
                if len(shape) != 3 or shape[1] != 3 or shape[2] < 1:
                    raise DfaustFormatError(f'{path}: dataset {key} has shape {shape}, expected (vertices, 3, frames)')
                if n_vertices not in (None, shape[0]):
                    raise DfaustFormatError(f'{path}: dataset {key} has {shape[0]} vertices, others {n_vertices}')
                n_vertices = shape[0]
                result.append((key, gender, int(shape[2])))
    if not result:
        raise DfaustFormatError(f'{root}: the registration files hold no <subject>_<sequence> datasets')
    return sorted(result)


def read_frames(path, key, frames):
    """(len(frames), V, 3) float64 registration vertices (metres) of the given frame indices."""
    frames = np.asarray(frames, np.int64)
    unique, inverse = np.unique(frames, return_inverse=True)
    with _open_hdf5(path) as f:
        if key not in f:
            raise DfaustFormatError(f'{path}: no dataset {key}')
        try:
            data = np.asarray(f[key][:, :, unique.tolist()], np.float64)  # (V, 3, k)
        except (OSError, ValueError, IndexError) as e:
            raise DfaustFormatError(f'{path}: cannot read {key} frames ({e})') from None
    vertices = data.transpose(2, 0, 1)[inverse]
    if not np.all(np.isfinite(vertices)):
        raise DfaustFormatError(f'{path}: {key} has non-finite vertices')
    return vertices


def load_uv_mesh(path):
    """posepile.render Mesh of smpl_uv.obj (faces, uvs, face_uvs; its vertices are not used); cached while the
    file is unchanged."""
    from posepile.util.fingerprint import file_stamp
    return _load_uv_mesh(str(path), str(file_stamp(path)))


@functools.lru_cache(maxsize=2)
def _load_uv_mesh(path, stamp):
    from posepile.render import MeshFormatError, load_obj
    path = Path(path)
    if not path.exists():
        raise DfaustFormatError(f'{path}: not found: put the SMPL UV mesh (smpl_uv.obj from the SMPL website) there')
    try:
        mesh = load_obj(path)
    except MeshFormatError as e:
        raise DfaustFormatError(str(e)) from None
    if mesh.face_uvs is None:
        raise DfaustFormatError(f'{path}: no UV coordinates (vt lines and f v/vt faces)')
    return mesh


def texture_names(root):
    """{gender: sorted texture file names under textures/<gender>/}."""
    root = Path(root) / TEXTURE_DIR
    return {gender: sorted(p.name for p in (root / gender).iterdir() if p.suffix.lower() in TEXTURE_SUFFIXES)
            if (root / gender).is_dir() else [] for gender in REGISTRATION_FILES}


def _texture(path):
    """The texture image at `path`, cached while the file is unchanged."""
    from posepile.util.fingerprint import file_stamp
    return _load_texture(str(path), str(file_stamp(path)))


@functools.lru_cache(maxsize=4)
def _load_texture(path, stamp):
    from posepile.render import MeshFormatError, load_texture
    try:
        return load_texture(path)
    except MeshFormatError as e:
        raise DfaustFormatError(str(e)) from None


def view_picks(key, n_frames, n_textures, n_views):
    """[(frame, texture index)] of the views of one sequence: frames and textures drawn uniformly (with
    replacement) from a seed of the sequence name (the same on every run and shard)."""
    from posepile.render import scene_seed
    rng = np.random.default_rng(scene_seed(NAME, key, 'picks'))
    frames = rng.integers(0, n_frames, n_views)
    textures = rng.integers(0, n_textures, n_views)
    return list(zip(frames.tolist(), textures.tolist()))


# ------------------------------------------------------------------------------------------------
# Fits
def fit_frames(root, task, frames, work):
    """{frame: (pose, betas, trans)} of the SMPL fits of the given frames, cached in work/fits/<key>.npz."""
    from posepile import bodymodels
    from posepile.bodymodels.fitter import fit_vertices
    from posepile.util import fileio
    from posepile.util.fingerprint import digest
    frames = sorted(set(frames))
    model = bodymodels.load('smpl', task['gender'], task.get('model_dir'))
    backend = os.environ.get('POSEPILE_FITTER') or None
    n_betas = min(N_BETAS, model.n_betas)
    fingerprint = digest({k: task[k] for k in ('key', 'gender', 'n_frames')}, frames, n_betas, FIT_ITERATIONS,
                         FIT_VERTEX_STRIDE, backend, str(model.path),
                         Path(model.path).stat().st_mtime_ns)
    path = Path(work) / 'fits' / f'{task["key"]}.npz'
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as cached:
                if str(cached['fingerprint']) == fingerprint:
                    return {int(f): (p, b, t) for f, p, b, t in zip(cached['frames'], cached['pose'],
                                                                     cached['betas'], cached['trans'])}
        except (OSError, ValueError, KeyError) as e:
            logger.warning('%s unreadable (%s): fitting again', path, e)
    vertices = read_frames(Path(root) / REGISTRATION_FILES[task['gender']], task['key'], frames)
    if vertices.shape[1] != model.n_vertices:
        raise DfaustFormatError(f'{REGISTRATION_FILES[task["gender"]]}: {task["key"]} has {vertices.shape[1]} '
                                f'vertices, the SMPL model at {model.path} {model.n_vertices}')
    poses, betas, trans, errors = [], [], [], []
    for start in range(0, len(frames), 16):
        result = fit_vertices(model, vertices[start:start + 16], n_betas, n_iterations=FIT_ITERATIONS,
                              backend=backend, vertex_subset=np.arange(0, model.n_vertices, FIT_VERTEX_STRIDE))
        poses.append(result['pose'])
        betas.append(result['betas'])
        trans.append(result['trans'])
        errors.append(result['vertex_error_m'])
    poses, betas, trans, errors = (np.concatenate(x) for x in (poses, betas, trans, errors))
    logger.info('%s: %d frames fitted (SMPL %s, %d betas): vertex error mean %.2f mm, max %.2f mm', task['key'],
                len(frames), task['gender'], n_betas, errors.mean() * 1000, errors.max() * 1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_write(path, 'wb') as f:
        np.savez(f, frames=np.array(frames), pose=poses, betas=betas, trans=trans, fingerprint=fingerprint,
                 error_mean_m=errors.mean(axis=1), error_max_m=errors.max(axis=1))
    return {f: (p, b, t) for f, p, b, t in zip(frames, poses, betas, trans)}


# ------------------------------------------------------------------------------------------------
# Stages
def render_scan(task, options, data_root):
    """The examples of one sequence's views (posepile.render.stage.render_views, one view per call)."""
    from posepile.datasets3d import Pose3DExample
    from posepile.render import Mesh
    from posepile.render.stage import render_views
    root = pipeline.raw_root(NAME, data_root)
    key, gender = task['key'], task['gender']
    picks = view_picks(key, task['n_frames'], len(task['textures']), options['n_views'])
    fits = fit_frames(root, task, [frame for frame, _ in picks], pipeline.work_dir(NAME, data_root))
    uv_mesh = load_uv_mesh(str(root / UV_MESH))
    frames = sorted(set(frame for frame, _ in picks))
    vertices = dict(zip(frames, read_frames(root / REGISTRATION_FILES[gender], key, frames)))
    if len(vertices[frames[0]]) != len(uv_mesh.vertices):
        raise DfaustFormatError(f'{root / UV_MESH}: {len(uv_mesh.vertices)} vertices, but the registrations '
                                f'have {len(vertices[frames[0]])}')
    examples = []
    for view, (frame, texture_index) in enumerate(picks):
        texture = _texture(str(root / TEXTURE_DIR / gender / task['textures'][texture_index]))
        mesh = Mesh(vertices[frame], uv_mesh.faces, uv_mesh.uvs, uv_mesh.face_uvs, texture)
        pose, betas, trans = fits[frame]
        parameters = {'type': 'smpl', 'gender': gender, 'pose': pose.astype(np.float32),
                      'shape': betas.astype(np.float32), 'trans': trans.astype(np.float32)}
        relpath = f'{NAME}/renders/{key}/{view:04d}.jpg'

        def make_example(_, camera, image_relpath, bbox, mask, parameters=parameters):
            return Pose3DExample(image_relpath, None, bbox, camera, scene_name=key, mask=mask,
                                 activity_name=key.partition('_')[2], parameters=parameters)

        examples += render_views(mesh, NAME, f'{key}/{view:04d}', lambda _, relpath=relpath: relpath,
                                 Path(data_root), {**options, 'n_views': 1}, make_example, up=WORLD_UP)
    return examples


def render_tasks(data_root=None):
    """One task per sequence: key, gender, n_frames, the gender's texture names, the stamps of its input files;
    one line naming a missing texture set, UV mesh or SMPL model."""
    from posepile import bodymodels
    from posepile.render.stage import input_stamps
    root = pipeline.raw_root(NAME, data_root)
    found = sequences(root)
    textures = texture_names(root)
    for gender in sorted({gender for _, gender, _ in found}):
        if not textures[gender]:
            raise FileNotFoundError(f'{root / TEXTURE_DIR / gender}: no {gender} SMPL UV textures (*.png, *.jpg): put '
                                    f'a texture set there (e.g. SMPLitex, see main.sh)')
    load_uv_mesh(str(root / UV_MESH))  # fail early, in one line
    data_root = root.parent
    # the stamps of what a sequence's images and labels come from are part of its fingerprint (a changed input
    # renders its views again): its gender's registration file, textures and SMPL model, the UV mesh
    inputs = {gender: input_stamps([root / REGISTRATION_FILES[gender], root / UV_MESH, bodymodels.find_model_file(
        'smpl', gender), *(root / TEXTURE_DIR / gender / name for name in textures[gender])], data_root)
        for gender in sorted({gender for _, gender, _ in found})}
    return [{'key': key, 'gender': gender, 'n_frames': n_frames, 'textures': textures[gender],
             'inputs': inputs[gender]} for key, gender, n_frames in found]


def render_stage(shard=None, n_workers=None, data_root=None, n_views=None, backend=None, skip_broken=None):
    """Fit and render the sequences (200 random 512x512 views each; --views, $POSEPILE_RENDER_VIEWS)."""
    from posepile.render.stage import default_options, run_render_stage
    data_root = Path(data_root) if data_root else pipeline.raw_root(NAME).parent
    n_views = n_views or int(os.environ.get('POSEPILE_RENDER_VIEWS', DEFAULT_VIEWS))
    tasks = render_tasks(data_root)  # fails early, in one line, when a model is missing
    return run_render_stage(tasks, render_scan, pipeline.work_dir(NAME, data_root) / 'renders', data_root,
                            default_options(n_views, backend=backend), shard, n_workers, skip_broken)


render_stage.cli_options = [('--views', dict(dest='n_views', type=int, default=None)),
                            ('--renderer', dict(dest='backend', default=None,
                                                help='numpy (default), opengl or blender; $POSEPILE_RENDERER')),
                            pipeline.SKIP_BROKEN_OPTION]


def make_dataset(data_root=None):
    """DFAUST renders, all TRAIN: parametric-only examples (no joints), masks, boxes of the masks."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    from posepile.render.stage import load_render_results
    keys = [key for key, _, _ in sequences(pipeline.raw_root(NAME, data_root))]
    results = load_render_results(pipeline.work_dir(NAME, data_root) / 'renders', keys)
    examples = [example for _, sequence_examples in results for example in sequence_examples]
    return Pose3DDataset(JointInfo([], []), examples, None, None)


def assemble(data_root=None):
    """The dataset for get_dataset('dfaust')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.dfaust.main', 'DFAUST stages', {
        'render': render_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
