import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import thuman2 as fake

REPO = Path(__file__).resolve().parent.parent
N_VIEWS = 3


def _env(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1',
               POSEPILE_RENDER_VIEWS=str(N_VIEWS),
               PATH=f'{REPO / ".venv" / "bin"}{os.pathsep}{os.environ.get("PATH", "")}')
    for key in ('POSEPILE_CACHE_DIR', 'POSEPILE_RENDERER'):
        env.pop(key, None)
    return env


def _silhouette(mesh, camera, image_size):
    """Pixel centres inside any projected triangle (independent of the renderer)."""
    points = camera.world_to_image(mesh.vertices * 1000)
    mask = np.zeros(image_size, bool)
    for a, b, c in points[mesh.faces]:
        x0, y0 = np.maximum(np.ceil(np.minimum(np.minimum(a, b), c)).astype(int), 0)
        x1, y1 = np.minimum(np.floor(np.maximum(np.maximum(a, b), c)).astype(int), [image_size[1] - 1,
                                                                                     image_size[0] - 1])
        if x1 < x0 or y1 < y0:
            continue
        y, x = np.mgrid[y0:y1 + 1, x0:x1 + 1]
        sides = [(q[0] - p[0]) * (y - p[1]) - (q[1] - p[1]) * (x - p[0]) for p, q in ((a, b), (b, c), (c, a))]
        mask[y0:y1 + 1, x0:x1 + 1] |= np.all([s >= 0 for s in sides], 0) | np.all([s <= 0 for s in sides], 0)
    return mask


def test_thuman2_recipe_on_fake_release(data_root):
    truth = fake.write_fake_release(data_root)
    script = str(REPO / 'posepile/ds/thuman2/main.sh')
    result = subprocess.run(['bash', script], cwd=REPO, env=_env(data_root), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile import bodymodels
    from posepile.storage.annotations import load_dataset
    from posepile.util import improc, masks
    dataset = load_dataset(data_root / 'cache' / 'thuman2.posepile')
    assert dataset.joint_info.n_joints == 0
    examples = dataset.examples[0]
    assert len(examples) == len(fake.SCANS) * N_VIEWS and not dataset.examples[1] and not dataset.examples[2]
    model = bodymodels.load('smplx', 'male', data_root / 'body_models')
    arrays = truth['model']
    for example in examples:
        scan = example.scene_name
        image = improc.imread_rgb(data_root / example.image_path)
        assert image.shape == (512, 512, 3)
        mask = masks.decode(example.mask)
        assert np.abs(image[~mask].astype(int) - 127).mean() < 3  # grey 127 background (JPEG noise)
        expected = _silhouette(truth['meshes'][scan], example.camera, (512, 512))
        assert np.sum(mask & expected) / np.sum(mask | expected) >= 0.98
        np.testing.assert_allclose(example.bbox, masks.to_bbox(example.mask))
        # parameters: the owners' rule v = scale * SMPLX(...) + translation, re-stated with the toy model
        fit = truth['fits'][scan]
        params = example.parameters
        assert (params['type'], params['gender']) == ('smplx', 'male')
        hands = [fit[f'{side}_hand_pose'][0] @ arrays[f'hands_components{side[0]}'][:12] + arrays[f'hands_mean{side[0]}']
                 for side in ('left', 'right')]
        pose = np.concatenate([fit['global_orient'][0], fit['body_pose'][0], fit['jaw_pose'][0], fit['leye_pose'][0],
                               fit['reye_pose'][0], *hands])
        np.testing.assert_allclose(params['pose'], pose, atol=1e-6)
        owners = fit['scale'] * model(pose[None], fit['betas'], None, expression=fit['expression'])['vertices'][0] \
            + fit['translation']
        ours = params['scale'] * model(params['pose'][None], params['shape'], params['trans'],
                                       expression=params['expression'])['vertices'][0]
        assert np.abs(ours - owners).max() < 1e-5
        # the camera maps the scan frame (x1000) to the image: the fit's body projects inside the mask's box
        joints_px = example.camera.world_to_image(bodymodels.parameter_joints_mm(params, model))
        assert np.isfinite(joints_px).all()

    # resumption: the scans' result files exist; deleting one scan's result and one of its views re-renders only
    # that view, byte-identically
    view = data_root / examples[0].image_path
    before = view.read_bytes()
    view.unlink()
    (data_root / 'thuman2' / 'posepile_work' / 'renders' / f'{examples[0].scene_name}.pkl').unlink()
    result = subprocess.run(['bash', script], cwd=REPO, env=_env(data_root), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert view.read_bytes() == before


def _files(folder):
    """{relpath: (bytes, mtime_ns)} of the files under `folder`."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(Path(folder).rglob('*')) if p.is_file()}


def test_thuman2_changed_scan_input_renders_only_that_scan_again(data_root, monkeypatch):
    """A changed texture (or fit) of one scan renders that scan's views again, the other scan's files are not
    touched; restoring the texture restores the first build's bytes (render stage in-process, 2 views)."""
    import cv2

    from posepile.ds.thuman2 import main as thuman2
    monkeypatch.delenv('POSEPILE_RENDERER', raising=False)
    fake.write_fake_release(data_root)
    renders = data_root / 'thuman2' / 'renders'
    assert thuman2.render_stage(data_root=data_root, n_views=2, n_workers=0) == len(fake.SCANS)
    first = _files(renders)
    assert sorted(first) == sorted(f'{scan}/{v:03d}{suffix}' for scan in fake.SCANS for v in range(2)
                                   for suffix in ('.jpg', '_mask.png'))
    of_scan = lambda files, scan: {k: v for k, v in files.items() if k.startswith(f'{scan}/')}  # noqa: E731

    # scan 0001's texture image: other colours, same file name (the OBJ and .mtl are unchanged)
    texture = data_root / 'thuman2' / 'THuman2.0_Release' / '0001' / 'material0.jpeg'
    original = texture.read_bytes()
    image = cv2.imread(str(texture))
    cv2.imwrite(str(texture), 255 - image)
    assert thuman2.render_stage(data_root=data_root, n_views=2, n_workers=0) == 1
    changed = _files(renders)
    assert of_scan(changed, '0000') == of_scan(first, '0000')  # bytes and mtimes
    for view in range(2):
        assert changed[f'0001/{view:03d}.jpg'][0] != first[f'0001/{view:03d}.jpg'][0]
        assert changed[f'0001/{view:03d}_mask.png'][0] == first[f'0001/{view:03d}_mask.png'][0]  # same geometry

    # scan 0000's fit file rewritten with the same bytes (a new mtime): its views are rendered again, same bytes
    fit = data_root / 'thuman2' / 'THUman2.0 SMPL-X Paras' / '0000' / 'smplx_param.pkl'
    fit.write_bytes(fit.read_bytes())
    assert thuman2.render_stage(data_root=data_root, n_views=2, n_workers=0) == 1
    refit = _files(renders)
    assert of_scan(refit, '0001') == of_scan(changed, '0001')
    assert all(refit[k][0] == first[k][0] and refit[k][1] != first[k][1] for k in of_scan(first, '0000'))

    texture.write_bytes(original)
    assert thuman2.render_stage(data_root=data_root, n_views=2, n_workers=0) == 1
    assert {k: v[0] for k, v in _files(renders).items()} == {k: v[0] for k, v in first.items()}


def test_thuman2_bad_parameter_file_is_one_line_error(data_root):
    fake.write_fake_release(data_root)
    bad = data_root / 'thuman2' / 'THUman2.0 SMPL-X Paras' / '0001' / 'smplx_param.pkl'
    bad.write_bytes(b'\x80\x02cos\nsystem\nq\x00.')
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/thuman2/main.sh')], cwd=REPO, env=_env(data_root),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert 'smplx_param.pkl' in last and 'refusing the global os.system' in last


@pytest.mark.realdata
def test_thuman2_reads_all_526_real_parameter_files(realdata):
    from posepile.ds.thuman2 import main as thuman2
    path = Path(realdata) / 'thuman2' / 'THUman2.0 SMPL-X Paras.zip'
    if not path.exists():
        pytest.skip(f'{path} not found')
    fits = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith('/smplx_param.pkl') and '__MACOSX' not in name:
                fits[name.split('/')[-2]] = thuman2.parse_params(archive.read(name), f'{path}::{name}')
    assert sorted(fits) == [f'{i:04d}' for i in range(526)]
    scales = np.array([fit['scale'][0] for fit in fits.values()])
    assert np.isclose(scales.min(), 0.160, atol=5e-4) and np.isclose(np.median(scales), 0.425, atol=5e-4)
    assert np.isclose(scales.max(), 0.830, atol=5e-4)
    # REFERENCE-nlf-era.md: 0525
    assert np.isclose(fits['0525']['scale'][0], 0.4160346358548051)
    np.testing.assert_allclose(fits['0525']['translation'], [-0.005495395, 0.150059102, -0.002393742], atol=1e-9)
    np.testing.assert_allclose(fits['0525']['global_orient'], [0.0377560, 0.4628327, -0.2276198], atol=1e-6)
    assert all(fit['left_hand_pose'].size == 12 for fit in fits.values())
    # the extracted copies read the same
    extracted = thuman2.load_params(Path(realdata) / 'thuman2' / 'THUman2.0 SMPL-X Paras' / '0000' / 'smplx_param.pkl')
    np.testing.assert_array_equal(extracted['translation'], fits['0000']['translation'])
