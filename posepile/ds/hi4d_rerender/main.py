"""Hi4D re-rendered: the textured per-frame scans of both people, rendered from random views aimed at one of them
(nlf-era-facts §1.3, NLF's parametric share `hi4d_rerender`); labels are Hi4D's SMPL fits of both people.

Reads the Hi4D release in $DATA_ROOT/hi4d (the official dataset.md of github.com/yifeiyin04/Hi4D; the same
folder as the `hi4d` recipe, whose readers are used):
    <pairXX>/<actionXX>/meta.npz                   start, end, num_persons (2), genders, ...
    <pairXX>/<actionXX>/frames/mesh-f00XXX.obj     the textured raw scan of the frame (both people), with
                       MatLib-F00XXX.mtl -> Atlas-F00XXX.png
    <pairXX>/<actionXX>/smpl/000XXX.npz            betas (P, 10), global_orient (P, 3), body_pose (P, 69),
                                                   transl (P, 3) m, joints_3d (P, 24, 3) m
The scans and the fits share one frame and unit (metres, y up): the toolkit's visualize_hi4d.py shows both in one
scene without any transform.

Stages: `render` (per sequence, sharded by sequence: 1000 views by default; view v draws a frame (uniformly, with
replacement, among the frames that have a scan and a fit) and a person; the camera and lights follow the original's
distribution aimed at that person's SMPL mesh (its body box centre is the image centre), the whole scan of both
people is rendered; 512x512 over grey 127, alpha -> mask; resumable by view; a sequence whose frames/, smpl/,
meta.npz or SMPL models changed is rendered again, see posepile.render.stage), `assemble` (all TRAIN).

Examples: per render, one per person with >= 6 of their 24 SMPL joints (joints_3d) inside the image, in person
order; box = the box of the person's projected SMPL vertices, clipped to the image (the original instead ran YOLO
on the renders and matched detections to these boxes by Hungarian assignment; no detector here); mask = the
render's alpha (both people, like the `hi4d` recipe's union mask); parameters = {'type': 'smpl', gender (meta.npz),
pose (72) = global_orient + body_pose, shape (10), trans (m)} in the world frame of the camera (mm).
"""
import logging
import os
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'hi4d_rerender'
RAW = 'hi4d'
DEFAULT_VIEWS = 1000
MIN_JOINTS_IN_IMAGE = 6
WORLD_UP = (0, 1, 0)
SCAN_PATTERN = re.compile(r'mesh-f(\d+)\.obj$')


class Hi4DRerenderFormatError(InputError):
    """A Hi4D scan or fit is missing or malformed (one line naming the file)."""


def raw_root(data_root=None):
    return pipeline.raw_root(RAW, data_root)


def work_dir(data_root=None):
    """$DATA_ROOT/hi4d/posepile_work/rerender (next to the real-image recipe's stages)."""
    return pipeline.work_dir(RAW, data_root) / 'rerender'


def scan_frames(seq_dir):
    """{frame id: scan path} of frames/mesh-f*.obj."""
    folder = Path(seq_dir) / 'frames'
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = SCAN_PATTERN.match(path.name)
            if match:
                found[int(match.group(1))] = path
    return found


def render_tasks(data_root=None):
    """One task per sequence that has textured scans: key '<pair>_<action>', the frames with a scan and a fit,
    the stamps of its input files (frames/: scans, materials, atlases; smpl/ fits; meta.npz) and of its people's
    SMPL models (one line naming a missing model), so that a changed input renders the sequence's views again."""
    from posepile import bodymodels
    from posepile.ds.hi4d.main import load_meta
    from posepile.render.stage import folder_files, input_stamps
    root = raw_root(data_root)
    seq_dirs = sorted(p.parent for p in root.glob('*/*/meta.npz')) if root.is_dir() else []
    tasks = []
    for seq_dir in seq_dirs:
        scans = scan_frames(seq_dir)
        if not scans:
            continue
        _, _, genders = load_meta(seq_dir / 'meta.npz')
        frames = sorted(f for f in scans if (seq_dir / 'smpl' / f'{f:06d}.npz').exists())
        if len(frames) < len(scans):
            logger.warning('%s: %d of %d scans have no smpl/<frame>.npz fit: left out', seq_dir,
                           len(scans) - len(frames), len(scans))
        if frames:
            inputs = [*folder_files(seq_dir / 'frames'), *folder_files(seq_dir / 'smpl'), seq_dir / 'meta.npz',
                      *(bodymodels.find_model_file('smpl', gender) for gender in sorted(set(genders)))]
            tasks.append({'key': f'{seq_dir.parent.name}_{seq_dir.name}',
                          'dir': str(seq_dir.relative_to(root)), 'frames': frames, 'genders': genders,
                          'inputs': input_stamps(inputs, root.parent)})
    if not tasks:
        raise FileNotFoundError(f'no <pair>/<action>/frames/mesh-f*.obj scans with meta.npz and smpl/ fits under '
                                f'{root}: extract the Hi4D pair archives there (see main.sh)')
    return tasks


def view_picks(key, frames, n_persons, n_views):
    """[(frame, person)] of the views of one sequence, drawn from a seed of its name (same on every run/shard)."""
    from posepile.render import scene_seed
    rng = np.random.default_rng(scene_seed(NAME, key, 'picks'))
    frame_indices = rng.integers(0, len(frames), n_views)
    persons = rng.integers(0, n_persons, n_views)
    return [(frames[i], int(p)) for i, p in zip(frame_indices.tolist(), persons.tolist())]


def load_scan(path):
    from posepile.render import MeshFormatError, load_obj
    try:
        mesh = load_obj(path)
    except MeshFormatError as e:
        raise Hi4DRerenderFormatError(str(e)) from None
    if mesh.texture is None:
        raise Hi4DRerenderFormatError(f'{path}: no texture (expected uv coordinates and a MatLib .mtl naming the '
                                      f'Atlas image)')
    return mesh


def people_of_frame(fit, genders, models):
    """[(parameters, vertices (V, 3) m, joints (24, 3) m)] of a frame's SMPL fits."""
    people = []
    for i, gender in enumerate(genders):
        pose = np.concatenate([fit['global_orient'][i], fit['body_pose'][i]])
        parameters = {'type': 'smpl', 'gender': gender, 'pose': pose.astype(np.float32),
                      'shape': fit['betas'][i].astype(np.float32), 'trans': fit['transl'][i].astype(np.float32)}
        vertices = models[gender](pose[None], fit['betas'][i][None], fit['transl'][i][None])['vertices'][0]
        people.append((parameters, vertices.astype(np.float64), fit['joints_3d'][i]))
    return people


def person_box(vertices_m, camera, image_size):
    """[x, y, w, h] of the projected vertices clipped to the image (zeros when outside)."""
    from posepile.util import boxes
    box = boxes.bb_of_points(camera.world_to_image(vertices_m * 1000))
    return np.asarray(boxes.intersection(box, boxes.full_box(image_size)), np.float32)


def render_scan(task, options, data_root):
    """The examples of one sequence's views (render_views, one view per call, each frame's scan loaded once)."""
    from posepile import bodymodels
    from posepile.datasets3d import Pose3DExample
    from posepile.ds.hi4d.main import load_smpl
    from posepile.render.stage import render_views
    seq_dir = raw_root(data_root) / task['dir']
    genders = task['genders']
    models = {g: bodymodels.load('smpl', g) for g in sorted(set(genders))}
    picks = view_picks(task['key'], task['frames'], len(genders), options['n_views'])
    image_size = tuple(options['image_size'])
    examples = []
    for frame in sorted(set(frame for frame, _ in picks)):
        mesh = load_scan(seq_dir / 'frames' / f'mesh-f{frame:05d}.obj')
        people = people_of_frame(load_smpl(seq_dir / 'smpl' / f'{frame:06d}.npz', len(genders)), genders, models)
        for view in [v for v, (f, _) in enumerate(picks) if f == frame]:
            relpath = f'{RAW}/rerenders/{task["dir"]}/{view:04d}.jpg'

            def make_example(_, camera, image_relpath, bbox, mask, people=people):
                kept = []
                for parameters, vertices, joints in people:
                    joints_px = camera.world_to_image(np.asarray(joints, np.float64) * 1000)
                    inside = np.sum(np.all((joints_px >= -0.5) & (joints_px < np.array(image_size[::-1]) - 0.5), 1))
                    box = person_box(vertices, camera, image_size)
                    if inside >= MIN_JOINTS_IN_IMAGE and box[2] > 0 and box[3] > 0:
                        kept.append(Pose3DExample(image_relpath, None, box, camera, scene_name=task['key'],
                                                  activity_name=task['dir'].split('/')[-1], mask=mask,
                                                  parameters=dict(parameters)))
                return kept

            for kept in render_views(mesh, NAME, f'{task["key"]}/{view:04d}', lambda _, r=relpath: r,
                                     Path(data_root), {**options, 'n_views': 1}, make_example, up=WORLD_UP,
                                     aim_vertices=people[picks[view][1]][1]):
                examples += kept
    return examples


def render_stage(shard=None, n_workers=None, data_root=None, n_views=None, backend=None, skip_broken=None):
    """Render the sequences (1000 random 512x512 views each; --views, $POSEPILE_RENDER_VIEWS)."""
    from posepile.render.stage import default_options, run_render_stage
    data_root = Path(data_root) if data_root else raw_root().parent
    n_views = n_views or int(os.environ.get('POSEPILE_RENDER_VIEWS', DEFAULT_VIEWS))
    tasks = render_tasks(data_root)  # fails early, in one line, when a model is missing
    return run_render_stage(tasks, render_scan, work_dir(data_root) / 'renders', data_root,
                            default_options(n_views, backend=backend), shard, n_workers, skip_broken)


render_stage.cli_options = [('--views', dict(dest='n_views', type=int, default=None)),
                            ('--renderer', dict(dest='backend', default=None,
                                                help='numpy (default), opengl or blender; $POSEPILE_RENDERER')),
                            pipeline.SKIP_BROKEN_OPTION]


def make_dataset(data_root=None):
    """Hi4D re-renders, all TRAIN: parametric-only examples (no joints), one per visible person."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    from posepile.render.stage import load_render_results
    keys = [task['key'] for task in render_tasks(data_root)]
    results = load_render_results(work_dir(data_root) / 'renders', keys)
    examples = [example for _, sequence_examples in results for example in sequence_examples]
    return Pose3DDataset(JointInfo([], []), examples, None, None)


def assemble(data_root=None):
    """The dataset for get_dataset('hi4d_rerender')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.hi4d_rerender.main', 'Hi4D re-render stages', {
        'render': render_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
