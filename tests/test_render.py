"""posepile.render: silhouettes agree with the mesh projected through the stored camera, the view distribution is
the original's, renders are reproducible, OBJ files (textured, vertex-coloured) are read correctly."""
import numpy as np
import pytest

from posepile import render
from posepile.render import primitives

MIN_IOU = 0.98


def projected_silhouette(mesh, camera, image_size):
    """The mesh's silhouette computed independently of the renderer: every triangle projected with
    camera.world_to_image (mm), and the pixel centres (integer coordinates) inside any of them."""
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
        inside = (np.all([s >= 0 for s in sides], axis=0) | np.all([s <= 0 for s in sides], axis=0))
        mask[y0:y1 + 1, x0:x1 + 1] |= inside
    return mask


def iou(a, b):
    return np.sum(a & b) / np.sum(a | b)


@pytest.mark.parametrize('seed', range(4))
def test_numpy_silhouette_matches_projection(seed):
    mesh = primitives.mannequin(seed=seed, rotation_y_rad=seed)
    camera, lights = render.sample_scene(render.scene_seed('geometry', seed), mesh.vertices, (256, 256))
    rgba = render.render(mesh, camera, lights, (256, 256), backend='numpy')
    _, mask = render.composite(rgba)
    expected = projected_silhouette(mesh, camera, (256, 256))
    assert expected.sum() > 0.04 * expected.size  # a thin mannequin, but a large one
    assert iou(mask, expected) >= MIN_IOU


@pytest.mark.parametrize('backend', ['opengl', 'blender'])
def test_optional_backend_silhouette_matches_projection(backend):
    ok, reason = render.backend_available(backend)
    if not ok:
        pytest.skip(reason)
    mesh = primitives.mannequin(seed=3)
    camera, lights = render.sample_scene(render.scene_seed('geometry-backend', 0), mesh.vertices, (256, 256))
    options = {'samples': 4} if backend == 'blender' else {}
    rgba = render.render(mesh, camera, lights, (256, 256), backend=backend, **options)
    _, mask = render.composite(rgba)
    assert iou(mask, projected_silhouette(mesh, camera, (256, 256))) >= MIN_IOU


def test_render_is_reproducible_and_composited_over_grey():
    mesh = primitives.mannequin(seed=1)
    images = []
    for _ in range(2):
        camera, lights = render.sample_scene(render.scene_seed('repro', 'scan', 5), mesh.vertices, (96, 96))
        images.append(render.render(mesh, camera, lights, (96, 96)))
    assert images[0].tobytes() == images[1].tobytes()
    rgb, mask = render.composite(images[0])
    assert np.all(rgb[~(images[0][..., 3] > 0)] == 127)  # background exactly grey 127
    assert mask.sum() == np.sum(images[0][..., 3] >= 128)
    other_camera, _ = render.sample_scene(render.scene_seed('repro', 'scan', 6), mesh.vertices, (96, 96))
    assert not np.allclose(other_camera.t, camera.t)


def test_view_distribution_is_the_originals():
    from posepile.render import views
    mesh = primitives.mannequin()
    lo, hi = mesh.box()
    centre = (lo + hi) / 2
    fovs, elevations, n_lights = [], [], []
    for i in range(300):
        camera, lights = render.sample_scene(i, mesh.vertices)
        f = camera.intrinsic_matrix[0, 0]
        fovs.append(np.rad2deg(2 * np.arctan(256 / f)))
        offset = camera.t / 1000 - centre
        elevations.append(np.rad2deg(np.arcsin(offset[1] / np.linalg.norm(offset))))
        # aimed at the box centre: it projects to the image centre
        assert np.allclose(camera.world_to_image(centre * 1000), [255.5, 255.5], atol=1e-6)
        # distance: the circumscribed sphere of the box touches the frame, d = r / sin(fov / 2)
        radius = np.linalg.norm(hi - lo) / 2
        assert np.isclose(np.linalg.norm(offset), radius / np.sin(np.deg2rad(fovs[-1]) / 2))
        n_lights.append(len(lights.points))
        assert lights.area is not None
    assert 30 <= min(fovs) < 32 and 68 < max(fovs) <= 70
    assert -30 <= min(elevations) < -27 and 57 < max(elevations) <= 60
    assert min(n_lights) == views.N_POINT_LIGHTS_RANGE[0] and max(n_lights) == views.N_POINT_LIGHTS_RANGE[1]


def test_obj_round_trip_textured_and_vertex_coloured(tmp_path):
    mesh = primitives.mannequin(seed=2)
    render.write_obj(tmp_path / 'scan.obj', mesh, texture_name='scan.png')
    loaded = render.load_obj(tmp_path / 'scan.obj')
    assert np.allclose(loaded.vertices, mesh.vertices, atol=1e-6)
    assert np.array_equal(loaded.faces, mesh.faces) and np.array_equal(loaded.face_uvs, mesh.face_uvs)
    assert np.array_equal(loaded.texture, mesh.texture)
    camera, lights = render.sample_scene(7, mesh.vertices, (64, 64))
    assert np.array_equal(render.render(loaded, camera, lights, (64, 64)), render.render(mesh, camera, lights, (64, 64)))

    coloured = render.Mesh(mesh.vertices, mesh.faces, vertex_colors=np.tile([[1.0, 0, 0]], (len(mesh.vertices), 1)))
    render.write_obj(tmp_path / 'red.obj', coloured)
    red = render.render(render.load_obj(tmp_path / 'red.obj'), camera, lights, (64, 64))
    person = red[..., 3] == 255
    assert np.all(red[person][:, 1:3] == 0) and red[person][:, 0].max() > 100  # red albedo: no green, no blue

    # a quad face is split into two triangles; negative indices are relative
    (tmp_path / 'quad.obj').write_text('v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf -4 -3 -2 -1\n')
    assert render.load_obj(tmp_path / 'quad.obj').faces.tolist() == [[0, 1, 2], [0, 2, 3]]


def test_bad_obj_is_one_line_error(tmp_path):
    (tmp_path / 'bad.obj').write_text('v 0 0 0\nv 1 0 0\nf 1 2 3\n')
    with pytest.raises(render.MeshFormatError, match=r'bad\.obj.*vertex 3 of 2'):
        render.load_obj(tmp_path / 'bad.obj')
    (tmp_path / 'tex.obj').write_text('mtllib tex.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1\n')
    (tmp_path / 'tex.mtl').write_text('newmtl m\nmap_Kd missing.jpg\n')
    with pytest.raises(render.MeshFormatError, match=r'missing\.jpg: texture image missing'):
        render.load_obj(tmp_path / 'tex.obj')
    with pytest.raises(render.MeshFormatError, match='nothing.obj: cannot read'):
        render.load_obj(tmp_path / 'nothing.obj')
