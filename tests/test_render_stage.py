"""posepile.render.stage: a scan whose inputs (mesh, texture, options) changed is rendered again in full, the other
scans are not touched, a killed run resumes per view without reusing images of old inputs, and restoring the
inputs restores the bytes. A two-scan stand-in recipe (textured boxes, 2 views of 64 x 64) keeps it fast."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from posepile.render import stage

SCANS = ('scan_a', 'scan_b')
N_VIEWS = 2
IMAGE_SIZE = (64, 64)


def _box_mesh(height_m, rgb=(200, 60, 40)):
    """A textured box (12 triangles), one uv triangle per face half."""
    from posepile.render import Mesh
    x, z = 0.2, 0.15
    corners = np.array([[sx * x, y, sz * z] for y in (0, height_m) for sx in (-1, 1) for sz in (-1, 1)], np.float64)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))], np.int64)
    uvs = np.array([[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]], np.float32)
    face_uvs = np.array([(0, 1, 2), (0, 2, 3)] * len(quads), np.int64)
    return Mesh(corners, faces, uvs, face_uvs, _texture_image(rgb))


def _texture_image(rgb):
    """(16, 16, 3) RGB stripes of `rgb` and its complement."""
    image = np.empty((16, 16, 3), np.uint8)
    image[:] = rgb
    image[::4] = 255 - np.asarray(rgb, np.uint8)
    return image


def _write_texture(path, rgb):
    import cv2
    cv2.imwrite(str(path), _texture_image(rgb)[..., ::-1])


def _write_release(root):
    from posepile.render import write_obj
    for i, scan in enumerate(SCANS):
        folder = root / 'release' / scan
        folder.mkdir(parents=True)
        write_obj(folder / f'{scan}.obj', _box_mesh(1.2 + 0.3 * i, (200, 60 + 100 * i, 40)),
                  texture_name='texture.png', mtl_name='mat.mtl')


def render_scan(task, options, data_root):
    """The stand-in recipe's render_scan (as thuman2's: one OBJ per scan, views through render_views)."""
    from posepile.render import load_obj
    mesh = load_obj(Path(data_root) / 'release' / task['key'] / f'{task["key"]}.obj')
    return stage.render_views(mesh, 'standin', task['key'], lambda v: f'renders/{task["key"]}/{v}.jpg', data_root,
                              options, lambda view, camera, relpath, bbox, _: (view, relpath, bbox, camera.t))


def _run(root, **kwargs):
    tasks = [{'key': scan, 'inputs': stage.input_stamps(stage.folder_files(root / 'release' / scan), root)}
             for scan in SCANS]
    return stage.run_render_stage(tasks, render_scan, root / 'work', root,
                                  stage.default_options(N_VIEWS, IMAGE_SIZE, 'numpy'), n_workers=0, **kwargs)


def _outputs(root):
    """{relpath: (bytes, mtime_ns)} of every image, mask and result file."""
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for folder in ('renders', 'work') for p in sorted((root / folder).rglob('*')) if p.is_file()}


@pytest.fixture
def counted_renders(monkeypatch):
    """The list of calls to posepile.render.render (optionally failing after `fail_after` calls: a killed run)."""
    from posepile import render
    calls, real_render = [], render.render
    state = {'fail_after': None}

    def counting(*args, **kwargs):
        if state['fail_after'] is not None and len(calls) >= state['fail_after']:
            raise KeyboardInterrupt('killed')
        calls.append(args[1])
        return real_render(*args, **kwargs)

    monkeypatch.setattr(render, 'render', counting)
    return calls, state


def test_changed_input_renders_that_scan_again_and_restoring_restores_bytes(tmp_path, counted_renders):
    calls, state = counted_renders
    _write_release(tmp_path)
    assert _run(tmp_path) == len(SCANS)
    first = _outputs(tmp_path)
    assert sum(k.endswith('.jpg') for k in first) == len(SCANS) * N_VIEWS and len(calls) == len(SCANS) * N_VIEWS
    jpegs = lambda outputs, scan: {k: v[0] for k, v in outputs.items()  # noqa: E731
                                   if k.startswith(f'renders/{scan}/') and k.endswith('.jpg')}
    of_scan = lambda outputs, scan: {k: v for k, v in outputs.items() if f'{scan}' in k}  # noqa: E731

    # a rerun with nothing changed renders nothing and writes nothing
    calls.clear()
    assert _run(tmp_path) == 0 and not calls and _outputs(tmp_path) == first

    # scan_a's texture changes (same size: only the content and mtime differ); the run is killed after 1 render
    texture = tmp_path / 'release' / 'scan_a' / 'texture.png'
    original_texture = texture.read_bytes()
    _write_texture(texture, (30, 90, 220))
    state['fail_after'] = 1
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path)
    assert len(calls) == 1  # view 0 of scan_a re-rendered, view 1 still holds the old image
    # the rerun renders only view 1 of scan_a (view 0 is in the new ledger), never reusing the old view 1
    calls.clear()
    state['fail_after'] = None
    assert _run(tmp_path) == 1 and len(calls) == 1
    changed = _outputs(tmp_path)
    old_a, new_a = jpegs(first, 'scan_a'), jpegs(changed, 'scan_a')
    assert sorted(new_a) == sorted(old_a) and all(new_a[k] != old_a[k] for k in old_a)  # every view new pixels
    assert of_scan(changed, 'scan_b') == of_scan(first, 'scan_b')  # bytes and mtimes of scan_b untouched
    # the new images are those of a clean build of the changed release
    clean = tmp_path / 'clean'
    clean.mkdir()
    shutil.copytree(tmp_path / 'release', clean / 'release')
    _run(clean)
    assert jpegs(_outputs(clean), 'scan_a') == new_a

    # restoring the texture restores the first build's bytes (the view files of scan_a; scan_b still untouched)
    texture.write_bytes(original_texture)
    calls.clear()
    assert _run(tmp_path) == 1 and len(calls) == N_VIEWS
    restored = _outputs(tmp_path)
    assert {k: v[0] for k, v in restored.items() if k.startswith('renders/')} == \
        {k: v[0] for k, v in first.items() if k.startswith('renders/')}
    assert of_scan(restored, 'scan_b') == of_scan(first, 'scan_b')


def test_changed_mesh_moves_the_camera_and_mask(tmp_path):
    from posepile.render import write_obj
    from posepile.util import fileio
    _write_release(tmp_path)
    _run(tmp_path)
    before = {key: fileio.load_pickle(tmp_path / 'work' / f'{key}.pkl') for key in SCANS}
    result_a = tmp_path / 'work' / 'scan_a.pkl'
    result_a_stamp = (result_a.read_bytes(), result_a.stat().st_mtime_ns)
    masks_before = {p: p.read_bytes() for p in sorted((tmp_path / 'renders' / 'scan_b').glob('*_mask.png'))}
    # scan_b's OBJ: a taller box; the .mtl and texture are unchanged
    texture = tmp_path / 'release' / 'scan_b' / 'texture.png'
    texture_bytes = texture.read_bytes()
    write_obj(tmp_path / 'release' / 'scan_b' / 'scan_b.obj', _box_mesh(2.0, (200, 160, 40)),
              texture_name='texture.png', mtl_name='mat.mtl')
    assert texture.read_bytes() == texture_bytes
    assert _run(tmp_path) == 1
    after = {key: fileio.load_pickle(tmp_path / 'work' / f'{key}.pkl') for key in SCANS}
    assert (result_a.read_bytes(), result_a.stat().st_mtime_ns) == result_a_stamp
    assert after['scan_b']['fingerprint'] != before['scan_b']['fingerprint']
    # the camera is aimed with the taller mesh: its centre moved (the old images would not match it)
    for (_, _, _, centre_before), (_, _, _, centre_after) in zip(before['scan_b']['examples'],
                                                                 after['scan_b']['examples']):
        assert np.linalg.norm(centre_after - centre_before) > 10  # mm
    assert all(p.read_bytes() != data for p, data in masks_before.items())
    # the box of each view is that of the new mask (computed here from the PNG)
    import cv2
    for view, relpath, bbox, _ in after['scan_b']['examples']:
        mask = cv2.imread(str(tmp_path / relpath.replace('.jpg', '_mask.png')), cv2.IMREAD_GRAYSCALE) > 0
        ys, xs = np.nonzero(mask)
        np.testing.assert_allclose(bbox, [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1])


def test_changed_option_or_shared_input_renders_every_scan_again(tmp_path, counted_renders):
    calls, _ = counted_renders
    _write_release(tmp_path)
    model = tmp_path / 'body_models' / 'model.npz'
    model.parent.mkdir()
    model.write_bytes(b'v1')
    _run(tmp_path, shared_input_files=[model])
    calls.clear()
    model.write_bytes(b'v22')  # a changed body model file: every scan's labels may change
    assert _run(tmp_path, shared_input_files=[model]) == len(SCANS) and len(calls) == len(SCANS) * N_VIEWS
    calls.clear()
    options = dict(stage.default_options(N_VIEWS, IMAGE_SIZE, 'numpy'), render_version=stage.RENDER_VERSION + 1)
    tasks = [{'key': scan, 'inputs': stage.input_stamps(stage.folder_files(tmp_path / 'release' / scan), tmp_path)}
             for scan in SCANS]
    assert stage.run_render_stage(tasks, render_scan, tmp_path / 'work', tmp_path, options, n_workers=0,
                                  shared_input_files=[model]) == len(SCANS)
    assert len(calls) == len(SCANS) * N_VIEWS


def test_input_stamps_are_relative_and_name_missing_files(tmp_path):
    (tmp_path / 'a').mkdir()
    (tmp_path / 'a' / 'x.obj').write_bytes(b'12345')
    stamps = stage.input_stamps([tmp_path / 'a' / 'x.obj', tmp_path / 'a' / 'gone.png'], tmp_path)
    assert [s[0] for s in stamps] == ['a/gone.png', 'a/x.obj']
    assert stamps[0][1:] == [None, None] and stamps[1][1] == 5
