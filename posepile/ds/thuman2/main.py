"""THuman2.0: 526 textured scans with the owners' SMPL-X fits, rendered from random views (nlf-era-facts §1.3).

Raw layout under $DATA_ROOT/thuman2:
- THuman2.0_Release/<id>/<id>.obj with its material (material0.mtl -> material0.jpeg): the scans, y up, in the
  scans' own units (the fits below map metres of the model to them; we call them metres, see "Frames");
- THUman2.0 SMPL-X Paras/<id>/smplx_param.pkl (from the owners' `THUman2.0 SMPL-X Paras.zip`): a pickled dict of
  betas (1, 10), global_orient (1, 3), body_pose (1, 63), left/right_hand_pose (1, 12) = 12 PCA hand components,
  jaw/leye/reye_pose (1, 3), expression (1, 10), scale () and translation (3,), pickled as a
  `trimesh.caching.TrackedArray` (read by a restricted unpickler that maps it to a plain array: no trimesh, no
  code from the file is run). The owners' rule: scan vertices = scale * SMPLX(...).vertices + translation.

Stages: `render` (100 views per scan by default, 512x512, posepile.render with the original's view and light
distribution; sharded by scan, resumable by render; a scan whose files (OBJ, .mtl, texture, fit) or the SMPL-X
model changed is rendered again, see posepile.render.stage), `assemble` (all renders as TRAIN).

Frames and parameters (posepile/bodymodels/transform.py): the world frame is the scan's frame, its unit taken as
the metre (camera optical centres in mm = 1000 x scan units). The fit is kept with its scale, X = s * model(pose,
shape, trans): type 'smplx', gender 'male' (as the original: the release names no gender), pose (165,) with the 12
PCA hand coefficients expanded by the male model's hand components and its hand mean added (smplx's use_pca,
flat_hand_mean=False), shape = the 10 betas, expression (10), trans = translation / scale (the owners'
s * M + translation = s * (M + translation / s)), scale = s. The original instead divided the camera's t by the
scale and dropped it (the same images and body, expressed in model space).
"""
import io
import logging
import pickle
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'thuman2'
SCAN_DIR = 'THuman2.0_Release'
PARAMS_DIR = 'THUman2.0 SMPL-X Paras'
DEFAULT_VIEWS = 100
GENDER = 'male'
ARRAYS = {'betas': 10, 'global_orient': 3, 'body_pose': 63, 'left_hand_pose': 12, 'right_hand_pose': 12,
          'jaw_pose': 3, 'leye_pose': 3, 'reye_pose': 3, 'expression': 10, 'scale': 1, 'translation': 3}


class Thuman2FormatError(InputError):
    pass


# ------------------------------------------------------------------------------------------------
# Readers
class _ParamUnpickler(pickle.Unpickler):
    """numpy arrays, dtypes and scalars, builtin containers, and trimesh's TrackedArray as a plain ndarray."""

    def find_class(self, module, name):
        try:
            from numpy._core import multiarray
        except ImportError:  # numpy < 2
            from numpy.core import multiarray
        if module in ('numpy.core.multiarray', 'numpy._core.multiarray') and name in ('_reconstruct', 'scalar'):
            return getattr(multiarray, name)
        if (module, name) == ('numpy', 'ndarray') or (module, name) == ('trimesh.caching', 'TrackedArray'):
            return np.ndarray
        if (module, name) == ('numpy', 'dtype'):
            return np.dtype
        if module == 'numpy.dtypes' and name.endswith('DType') and hasattr(np.dtypes, name):
            return getattr(np.dtypes, name)
        if module in ('builtins', '__builtin__') and name in ('dict', 'list', 'tuple'):
            return {'dict': dict, 'list': list, 'tuple': tuple}[name]
        if module == '_codecs' and name == 'encode':
            import codecs
            return codecs.encode
        raise pickle.UnpicklingError(f'refusing the global {module}.{name} (not part of a parameter file)')


def parse_params(data, path):
    """{name: float64 vector} of a smplx_param.pkl's bytes, validated (`path` names the file in errors)."""
    try:
        raw = _ParamUnpickler(io.BytesIO(data), encoding='latin1').load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise Thuman2FormatError(f'{path}: not a readable SMPL-X parameter pickle ({type(e).__name__}: {e})') \
            from None
    if not isinstance(raw, dict):
        raise Thuman2FormatError(f'{path}: expected a dict of parameters, found {type(raw).__name__}')
    params = {}
    for key, size in ARRAYS.items():
        if key not in raw:
            raise Thuman2FormatError(f'{path}: no {key!r}')
        value = np.asarray(raw[key], np.float64).reshape(-1)
        if value.size != size or not np.all(np.isfinite(value)):
            raise Thuman2FormatError(f'{path}: {key} has {value.size} values, expected {size} finite ones')
        params[key] = value
    if not params['scale'][0] > 0:
        raise Thuman2FormatError(f'{path}: scale {params["scale"][0]} is not positive')
    return params


def load_params(path):
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise Thuman2FormatError(f'{path}: cannot read the SMPL-X parameters ({e.strerror or e})') from None
    return parse_params(data, path)


def parameters_of_fit(fit, hand_pca):
    """Pose3DExample.parameters (module docstring) of a parsed fit; `hand_pca` of the male SMPL-X model."""
    from posepile.bodymodels.hands import smplx_full_pose
    pose = smplx_full_pose(fit['global_orient'], fit['body_pose'], fit['jaw_pose'], fit['leye_pose'],
                           fit['reye_pose'], fit['left_hand_pose'], fit['right_hand_pose'], hand_pca=hand_pca,
                           use_pca=True)
    scale = float(fit['scale'][0])
    return {'type': 'smplx', 'gender': GENDER, 'pose': pose.astype(np.float32),
            'shape': fit['betas'].astype(np.float32), 'expression': fit['expression'].astype(np.float32),
            'trans': (fit['translation'] / scale).astype(np.float32), 'scale': scale}


def scan_ids(data_root=None):
    """Sorted ids of the scans that have both an OBJ and a parameter file; one line naming what is missing."""
    root = pipeline.raw_root(NAME, data_root)
    scans = root / SCAN_DIR
    if not scans.is_dir():
        raise FileNotFoundError(f'{scans} not found: extract THuman2.0_Release.zip into {root} (see main.sh)')
    params = root / PARAMS_DIR
    if not params.is_dir():
        raise FileNotFoundError(f'{params} not found: extract "THUman2.0 SMPL-X Paras.zip" into {root}')
    ids = sorted(p.name for p in scans.iterdir() if (p / f'{p.name}.obj').is_file())
    without_fit = [i for i in ids if not (params / i / 'smplx_param.pkl').is_file()]
    if without_fit:
        raise Thuman2FormatError(f'{params}: no smplx_param.pkl for {len(without_fit)} scans (e.g. {without_fit[0]})')
    if not ids:
        raise Thuman2FormatError(f'{scans}: no <id>/<id>.obj scans')
    return ids


def hand_pca_of_model(model_dir=None):
    from posepile import bodymodels
    from posepile.bodymodels.hands import hand_pca
    return hand_pca(bodymodels.find_model_file('smplx', GENDER, model_dir))


# ------------------------------------------------------------------------------------------------
# Stages
def render_scan(task, options, data_root):
    """The examples of one scan's views (posepile.render.stage.render_views)."""
    from posepile.datasets3d import Pose3DExample
    from posepile.render import load_obj
    from posepile.render.stage import render_views
    root = pipeline.raw_root(NAME, data_root)
    scan = task['key']
    parameters = parameters_of_fit(load_params(root / PARAMS_DIR / scan / 'smplx_param.pkl'),
                                   hand_pca_of_model(task.get('model_dir')))
    mesh = load_obj(root / SCAN_DIR / scan / f'{scan}.obj')

    def make_example(view, camera, relpath, bbox, mask):
        return Pose3DExample(relpath, None, bbox, camera, scene_name=scan, mask=mask, parameters=dict(parameters))

    return render_views(mesh, NAME, scan, lambda view: f'{NAME}/renders/{scan}/{view:03d}.jpg',
                        Path(data_root), options, make_example)


def render_stage(shard=None, n_workers=None, data_root=None, n_views=None, backend=None, skip_broken=None):
    """Render the scans (100 random 512x512 views each; --views, $POSEPILE_RENDER_VIEWS)."""
    import os

    from posepile import bodymodels
    from posepile.render.stage import default_options, folder_files, input_stamps, run_render_stage
    data_root = Path(data_root) if data_root else pipeline.raw_root(NAME).parent
    n_views = n_views or int(os.environ.get('POSEPILE_RENDER_VIEWS', DEFAULT_VIEWS))
    root = pipeline.raw_root(NAME, data_root)
    # the stamps of a scan's files (OBJ, .mtl, texture image: its folder) and fit are part of its fingerprint, and
    # the SMPL-X model's of every scan's (hand PCA): a changed input renders that scan's views again
    tasks = [{'key': scan, 'inputs': input_stamps([*folder_files(root / SCAN_DIR / scan),
                                                   root / PARAMS_DIR / scan / 'smplx_param.pkl'], data_root)}
             for scan in scan_ids(data_root)]
    hand_pca_of_model()  # fail early, in one line, when the SMPL-X model is missing
    return run_render_stage(tasks, render_scan, pipeline.work_dir(NAME, data_root) / 'renders', data_root,
                            default_options(n_views, backend=backend), shard, n_workers, skip_broken,
                            shared_input_files=[bodymodels.find_model_file('smplx', GENDER)])


render_stage.cli_options = [('--views', dict(dest='n_views', type=int, default=None)),
                            ('--renderer', dict(dest='backend', default=None,
                                                help='numpy (default), opengl or blender; $POSEPILE_RENDERER')),
                            pipeline.SKIP_BROKEN_OPTION]


def make_dataset(data_root=None):
    """THuman2.0 renders, all TRAIN: parametric-only examples (no joints), masks, boxes of the masks."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    from posepile.render.stage import load_render_results
    results = load_render_results(pipeline.work_dir(NAME, data_root) / 'renders', scan_ids(data_root))
    examples = [example for _, scan_examples in results for example in scan_examples]
    return Pose3DDataset(JointInfo([], []), examples, None, None)


def assemble(data_root=None):
    """The dataset for get_dataset('thuman2')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.thuman2.main', 'THuman2.0 stages', {
        'render': render_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
