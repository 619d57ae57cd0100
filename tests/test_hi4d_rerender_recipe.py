import os
import subprocess
from pathlib import Path

import numpy as np

from tests.fakes import hi4d_rerender as fake
from tests.test_thuman2_recipe import _silhouette

REPO = Path(__file__).resolve().parent.parent
N_VIEWS = 3


def _env(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1',
               POSEPILE_RENDER_VIEWS=str(N_VIEWS),
               PATH=f'{REPO / ".venv" / "bin"}{os.pathsep}{os.environ.get("PATH", "")}')
    for key in ('POSEPILE_CACHE_DIR', 'POSEPILE_RENDERER'):
        env.pop(key, None)
    return env


def _picks(key, frames, n_persons):
    """The recipe's rule re-stated: a frame index then a person per view, from a seed of the sequence name."""
    from posepile.render import scene_seed
    rng = np.random.default_rng(scene_seed('hi4d_rerender', key, 'picks'))
    frame_indices = rng.integers(0, len(frames), N_VIEWS)
    return [(frames[i], int(p)) for i, p in zip(frame_indices.tolist(), rng.integers(0, n_persons, N_VIEWS).tolist())]


def test_hi4d_rerender_recipe_on_fake_release(data_root):
    truth = fake.write_fake_release(data_root)
    script = str(REPO / 'posepile/ds/hi4d_rerender/main.sh')
    result = subprocess.run(['bash', script], cwd=REPO, env=_env(data_root), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile import bodymodels
    from posepile.render import Mesh, concatenate
    from posepile.storage.annotations import load_dataset
    from posepile.util import improc, masks
    dataset = load_dataset(data_root / 'cache' / 'hi4d_rerender.posepile')
    assert dataset.joint_info.n_joints == 0 and not dataset.examples[1] and not dataset.examples[2]
    examples = dataset.examples[0]
    models = {g: bodymodels.load('smpl', g, data_root / 'body_models') for g in ('female', 'male')}
    picks = _picks('pair00_hug00', list(fake.FRAMES), 2)
    by_image = {}
    for example in examples:
        by_image.setdefault(example.image_path, []).append(example)
    assert sorted(by_image) == [f'hi4d/rerenders/{fake.SEQUENCE}/{v:04d}.jpg' for v in range(N_VIEWS)]
    n_expected, worst_px = 0, 0.0
    for image_path, image_examples in by_image.items():
        view = int(Path(image_path).stem)
        frame, aimed = picks[view]
        people = truth['frames'][frame]
        camera = image_examples[0].camera
        image = improc.imread_rgb(data_root / image_path)
        assert image.shape == (512, 512, 3)
        mask = masks.decode(image_examples[0].mask)
        assert np.abs(image[~mask].astype(int) - 127).mean() < 3
        scan = concatenate([Mesh(q['vertices'], truth['faces']) for q in people])
        expected = _silhouette(scan, camera, (512, 512))
        assert np.sum(mask & expected) / np.sum(mask | expected) >= 0.98
        # aimed at the drawn person: the centre of their SMPL vertex box is the image centre
        lo, hi = people[aimed]['vertices'].min(0), people[aimed]['vertices'].max(0)
        np.testing.assert_allclose(camera.world_to_image((lo + hi)[None] / 2 * 1000)[0], [255.5, 255.5], atol=0.01)
        # one example per person with >= 6 of 24 joints inside the image, in person order
        visible = []
        for p, q in enumerate(people):
            px = camera.world_to_image(q['joints'] * 1000)
            if np.sum(np.all((px >= -0.5) & (px < 511.5), axis=1)) >= 6:
                visible.append(p)
        n_expected += len(visible)
        assert [ex.parameters['gender'] for ex in image_examples] == [fake.GENDERS[p] for p in visible]
        for example, p in zip(image_examples, visible):
            q = people[p]
            params = example.parameters
            assert params['type'] == 'smpl'
            np.testing.assert_allclose(params['pose'], q['pose'], atol=1e-6)
            model = models[params['gender']]
            in_camera = bodymodels.rototranslate(params, camera.R, camera.t / 1000, model=model)
            fitted_px = camera.camera_to_image(bodymodels.parameter_joints_mm(in_camera, model))
            worst_px = max(worst_px, float(np.abs(fitted_px - camera.world_to_image(q['joints'] * 1000)).max()))
            box_px = camera.world_to_image(q['vertices'] * 1000)
            x0, y0 = np.maximum(box_px.min(0), 0)
            x1, y1 = np.minimum(box_px.max(0), 512)
            np.testing.assert_allclose(example.bbox, [x0, y0, x1 - x0, y1 - y0], atol=1e-3)
    assert len(examples) == n_expected and n_expected >= N_VIEWS
    assert worst_px < 0.5, worst_px


def test_hi4d_rerender_changed_atlas_renders_the_sequence_again(data_root, monkeypatch):
    """The render stage in-process: one frame's texture atlas changed -> the sequence is rendered again; the views
    of that frame get new pixels, the others the same bytes; restoring the atlas restores the first build."""
    import cv2

    from posepile.ds.hi4d_rerender import main as hi4d_rerender
    from tests.test_thuman2_recipe import _files
    monkeypatch.delenv('POSEPILE_RENDERER', raising=False)
    fake.write_fake_release(data_root)
    renders = data_root / 'hi4d' / 'rerenders'
    run = lambda: hi4d_rerender.render_stage(data_root=data_root, n_views=N_VIEWS, n_workers=0)  # noqa: E731
    assert run() == 1
    first = _files(renders)
    assert run() == 0 and _files(renders) == first
    picks = _picks('pair00_hug00', list(fake.FRAMES), 2)
    frame = picks[0][0]
    atlas = data_root / 'hi4d' / fake.SEQUENCE / 'frames' / f'Atlas-F{frame:05d}.png'
    original = atlas.read_bytes()
    cv2.imwrite(str(atlas), 255 - cv2.imread(str(atlas)))
    assert run() == 1
    changed = _files(renders)
    for view, (view_frame, _) in enumerate(picks):
        image = f'{fake.SEQUENCE}/{view:04d}.jpg'
        assert (changed[image][0] != first[image][0]) == (view_frame == frame), view
        assert changed[image][1] != first[image][1]  # every view of the sequence rendered again

    atlas.write_bytes(original)
    assert run() == 1
    assert {k: v[0] for k, v in _files(renders).items()} == {k: v[0] for k, v in first.items()}


def test_hi4d_rerender_missing_texture_is_one_line_error(data_root):
    fake.write_fake_release(data_root)
    frame = _picks('pair00_hug00', list(fake.FRAMES), 2)[0][0]  # a frame that is rendered
    (data_root / 'hi4d' / fake.SEQUENCE / 'frames' / f'Atlas-F{frame:05d}.png').unlink()
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/hi4d_rerender/main.sh')], cwd=REPO,
                            env=_env(data_root), capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert f'Atlas-F{frame:05d}.png' in last and 'texture' in last
