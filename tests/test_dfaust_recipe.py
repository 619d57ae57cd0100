import os
import subprocess
from pathlib import Path

import numpy as np

from tests.fakes import dfaust as fake
from tests.test_thuman2_recipe import _silhouette

REPO = Path(__file__).resolve().parent.parent
N_VIEWS = 2


def _env(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1',
               POSEPILE_RENDER_VIEWS=str(N_VIEWS),
               PATH=f'{REPO / ".venv" / "bin"}{os.pathsep}{os.environ.get("PATH", "")}')
    for key in ('POSEPILE_CACHE_DIR', 'POSEPILE_RENDERER', 'POSEPILE_FITTER'):
        env.pop(key, None)
    return env


def _picks(key, n_frames, n_textures):
    """The recipe's rule re-stated: frames then textures drawn uniformly from a seed of the sequence name."""
    from posepile.render import scene_seed
    rng = np.random.default_rng(scene_seed('dfaust', key, 'picks'))
    return list(zip(rng.integers(0, n_frames, N_VIEWS).tolist(), rng.integers(0, n_textures, N_VIEWS).tolist()))


def test_dfaust_recipe_on_fake_release(data_root):
    truth = fake.write_fake_release(data_root)
    script = str(REPO / 'posepile/ds/dfaust/main.sh')
    result = subprocess.run(['bash', script], cwd=REPO, env=_env(data_root), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile import bodymodels
    from posepile.render import Mesh
    from posepile.storage.annotations import load_dataset
    from posepile.util import improc, masks
    dataset = load_dataset(data_root / 'cache' / 'dfaust.posepile')
    assert dataset.joint_info.n_joints == 0
    examples = dataset.examples[0]
    n_sequences = sum(len(s) for s in fake.SEQUENCES.values())
    assert len(examples) == n_sequences * N_VIEWS and not dataset.examples[1] and not dataset.examples[2]
    models = {g: bodymodels.load('smpl', g, data_root / 'body_models') for g in ('female', 'male')}
    by_sequence = {}
    for example in examples:
        by_sequence.setdefault(example.scene_name, []).append(example)
    assert sorted(by_sequence) == sorted(truth['sequences'])
    worst_px = 0.0
    for key, sequence_examples in by_sequence.items():
        seq = truth['sequences'][key]
        picks = _picks(key, len(seq['pose']), len(fake.TEXTURES[seq['gender']]))
        for example in sorted(sequence_examples, key=lambda e: e.image_path):
            view = int(Path(example.image_path).stem)
            frame, _ = picks[view]
            image = improc.imread_rgb(data_root / example.image_path)
            assert image.shape == (512, 512, 3)
            mask = masks.decode(example.mask)
            assert np.abs(image[~mask].astype(int) - 127).mean() < 3  # grey 127 background
            # the registration of the drawn frame, projected: silhouette IoU with the rendered mask
            expected = _silhouette(Mesh(seq['vertices'][frame].astype(np.float64), truth['faces']), example.camera,
                                   (512, 512))
            assert np.sum(mask & expected) / np.sum(mask | expected) >= 0.98
            np.testing.assert_allclose(example.bbox, masks.to_bbox(example.mask))
            # parameter round trip: world fit -> camera frame -> toy model joints -> pixels, vs the true joints
            params = example.parameters
            assert (params['type'], params['gender']) == ('smpl', seq['gender'])
            assert params['shape'].shape == (fake.N_SHAPE,)  # min(128, the model's betas)
            model = models[seq['gender']]
            in_camera = bodymodels.rototranslate(params, example.camera.R, example.camera.t / 1000, model=model)
            fitted_px = example.camera.camera_to_image(bodymodels.parameter_joints_mm(in_camera, model))
            true_joints_mm = model(seq['pose'][frame][None], seq['betas'], seq['trans'][frame][None],
                                   return_vertices=False)['joints'][0] * 1000
            true_px = example.camera.world_to_image(true_joints_mm)
            worst_px = max(worst_px, float(np.abs(fitted_px - true_px).max()))
    assert worst_px < 0.5, worst_px
    fits = sorted((data_root / 'dfaust' / 'posepile_work' / 'fits').glob('*.npz'))
    assert len(fits) == n_sequences
    for path in fits:
        with np.load(path) as cached:
            assert cached['error_max_m'].max() < 1e-3  # the registrations are the toy model's own meshes

    # resumption: one view and its sequence's result removed -> only that view is rendered again, identically
    view = data_root / examples[0].image_path
    before = view.read_bytes()
    view.unlink()
    (data_root / 'dfaust' / 'posepile_work' / 'renders' / f'{examples[0].scene_name}.pkl').unlink()
    result = subprocess.run(['bash', script], cwd=REPO, env=_env(data_root), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert view.read_bytes() == before


def test_dfaust_changed_texture_or_model_renders_only_that_genders_sequences_again(data_root, monkeypatch):
    """The render stage in-process: a gender's texture or SMPL model file changed -> that gender's sequences are
    rendered again (new pixels for a new texture), the other gender's files are not touched; restoring the texture
    restores the first build's bytes."""
    import cv2

    from posepile.ds.dfaust import main as dfaust
    from tests.test_thuman2_recipe import _files
    monkeypatch.delenv('POSEPILE_RENDERER', raising=False)
    monkeypatch.delenv('POSEPILE_FITTER', raising=False)
    fake.write_fake_release(data_root)
    renders = data_root / 'dfaust' / 'renders'
    run = lambda: dfaust.render_stage(data_root=data_root, n_views=N_VIEWS, n_workers=0)  # noqa: E731
    assert run() == sum(len(s) for s in fake.SEQUENCES.values())
    first = _files(renders)
    of_gender = lambda files, g: {k: v for k, v in files.items() if k.split('/')[0] in fake.SEQUENCES[g]}  # noqa
    assert len(of_gender(first, 'male')) == 2 * N_VIEWS * len(fake.SEQUENCES['male'])

    texture = data_root / 'dfaust' / 'textures' / 'male' / fake.TEXTURES['male'][0]  # the only male texture
    original = texture.read_bytes()
    cv2.imwrite(str(texture), 255 - cv2.imread(str(texture)))
    assert run() == len(fake.SEQUENCES['male'])
    changed = _files(renders)
    assert of_gender(changed, 'female') == of_gender(first, 'female')  # bytes and mtimes
    male_jpegs = [k for k in of_gender(first, 'male') if k.endswith('.jpg')]
    assert male_jpegs and all(changed[k][0] != first[k][0] for k in male_jpegs)

    model = data_root / 'body_models' / 'smpl' / 'SMPL_FEMALE.pkl'
    model.write_bytes(model.read_bytes())  # a new mtime: the labels may have changed
    assert run() == len(fake.SEQUENCES['female'])
    assert of_gender(_files(renders), 'male') == of_gender(changed, 'male')

    texture.write_bytes(original)
    assert run() == len(fake.SEQUENCES['male'])
    assert {k: v[0] for k, v in _files(renders).items()} == {k: v[0] for k, v in first.items()}


def test_dfaust_bad_registration_file_is_one_line_error(data_root):
    fake.write_fake_release(data_root)
    bad = data_root / 'dfaust' / 'registrations_m.hdf5'
    bad.write_bytes(bad.read_bytes()[:1000])
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/dfaust/main.sh')], cwd=REPO, env=_env(data_root),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert 'registrations_m.hdf5' in last and 'HDF5' in last
