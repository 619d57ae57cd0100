"""Pose2DExample.densepose: the IUV -> (SMPL vertex triplet, barycentric) converter on a synthetic
UV_Processed.mat in DensePose's layout, the box-frame -> pixel mapping, crops (reprojection < 0.01 px),
the dataset cache, Barecat (the original's field names and dtypes) and DensePose's real demo annotation."""
import pickle

import cv2
import numpy as np
import pytest

from posepile.datasets2d import DensePose, Pose2DDataset, Pose2DExample
from posepile.datasets3d import TRAIN
from posepile.joint_info import JointInfo
from posepile.preproc.cropping import make_efficient_example
from posepile.storage import annotations, barecat_store
from posepile.util import improc
from posepile.util.camera import Camera, reproject_image_points
from posepile.util.densepose import IUVConverter, UVDataError, dp_box_to_image
from tests.conftest import realdata_file
from tests.fakes import densepose_coco as fake


@pytest.fixture(scope='module')
def converter(tmp_path_factory):
    return IUVConverter.from_mat(fake.write_uv_data(tmp_path_factory.mktemp('uv') / 'UV_Processed.mat'))


def _expected_fbc(chart, u, v):
    """DensePose's rule re-stated point by point: the first triangle of the chart (file order) containing (u, v),
    else the nearest UV vertex of the chart. Returns (SMPL ids (3,), barycoords (3,))."""
    charts, faces, us, vs, smpl_ids = fake.synthetic_uv_layout()
    nearest = None
    for face_index in np.flatnonzero(charts == chart):
        p = np.array([[us[k], vs[k]] for k in faces[face_index]])
        matrix = np.array([p[1] - p[0], p[2] - p[0]]).T
        r, t = np.linalg.solve(matrix, np.array([u, v]) - p[0])
        if r >= -1e-12 and t >= -1e-12 and r + t <= 1 + 1e-12:
            return smpl_ids[faces[face_index]], np.array([1 - r - t, r, t])
        for corner in range(3):
            d = np.hypot(*(p[corner] - [u, v]))
            if nearest is None or d < nearest[0]:
                nearest = (d, face_index, corner)
    _, face_index, corner = nearest
    return smpl_ids[faces[face_index]], np.eye(3)[corner]


def test_converter_matches_the_rule_point_by_point(converter):
    rng = np.random.default_rng(1)
    charts = rng.integers(1, 25, 300)
    charts[:40] = fake.PARTIAL_CHART  # many points above its diagonal: nearest-vertex fallback
    u, v = rng.uniform(0, 1, 300), rng.uniform(0, 1, 300)
    ids, bary = converter(charts.astype(float), u, v)
    assert ids.shape == (300, 3) and ids.dtype == np.int32 and bary.dtype == np.float32
    n_fallback = 0
    for k in range(300):
        expected_ids, expected_bary = _expected_fbc(charts[k], u[k], v[k])
        np.testing.assert_array_equal(ids[k], expected_ids)
        np.testing.assert_allclose(bary[k], expected_bary, atol=1e-6)
        n_fallback += np.count_nonzero(expected_bary == 1) == 1
    assert 5 < n_fallback < 40  # the partial chart's upper half
    np.testing.assert_allclose(bary.sum(1), 1, atol=1e-6)


def test_barycentric_coordinates_reconstruct_the_uv_point(converter):
    """Inside a triangle, sum_k bary_k * UV(corner_k) == (U, V): the body point is exactly the annotated one."""
    charts, faces, us, vs, smpl_ids = fake.synthetic_uv_layout()
    uv_of_smpl = {int(s): (a, b) for s, a, b in zip(smpl_ids, us, vs)}  # the toy id map has no seams
    rng = np.random.default_rng(2)
    u, v = rng.uniform(0, 1, 50), rng.uniform(0, 1, 50)
    ids, bary = converter(np.full(50, 3.0), u, v)
    corners = np.array([[uv_of_smpl[int(i)] for i in row] for row in ids])  # (50, 3, 2)
    np.testing.assert_allclose(np.einsum('nk,nkd->nd', bary, corners), np.stack([u, v], 1), atol=1e-6)


def test_converter_errors(tmp_path, converter):
    with pytest.raises(ValueError, match='chart 25'):
        converter([25], [0.5], [0.5])
    with pytest.raises(ValueError, match='whole numbers'):
        converter([2.5], [0.5], [0.5])
    bad = tmp_path / 'UV_Processed.mat'
    from scipy.io import savemat
    savemat(str(bad), {'All_Faces': np.ones((2, 3))})
    with pytest.raises(UVDataError, match=f'{bad}.*All_FaceIndices'):
        IUVConverter.from_mat(bad)
    with pytest.raises(FileNotFoundError, match='get_densepose_uv.sh'):
        IUVConverter.from_mat(tmp_path / 'absent.mat')


def test_box_frame_to_pixels():
    """x = round(box_x) + dp_x / 255 * round(box_w), the box clipped to the image first."""
    points = dp_box_to_image([0, 255, 127.5], [0, 255, 51], [10.4, 20.6, 100.2, 50.0], (640, 480))
    np.testing.assert_allclose(points, [[10, 21], [110, 71], [60, 31]], atol=1e-4)
    clipped = dp_box_to_image([255], [255], [600, 450, 80, 40], (640, 480))  # box to x 680, y 490
    np.testing.assert_allclose(clipped, [[640, 480]])


def _densepose(rng, n, lo=(5, 5), hi=(60, 90)):
    return (rng.uniform(lo, hi, (n, 2)), rng.integers(0, 6890, (n, 3)), rng.dirichlet([1, 1, 1], n))


@pytest.mark.parametrize('flip', [False, True])
def test_densepose_points_survive_a_crop_round_trip(tmp_path, flip):
    """Cropping moves the DensePose points like the joints: mapped back through the cameras they land where
    they were (< 0.01 px), with a distorted camera and a 2D example without one; correspondences unchanged."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (120, 160, 3), np.uint8)
    improc.write_jpeg_atomic(tmp_path / 'src.jpg', image, 95)
    camera = Camera(intrinsic_matrix=[[150, 0, 80], [0, 150, 60], [0, 0, 1]],
                    distortion_coeffs=[-0.2, 0.05, 0.001, -0.001, 0], world_up=(0, -1, 0))
    for cam in (camera, None):
        dense = _densepose(rng, 40, lo=(40, 30), hi=(110, 100))
        coords = rng.uniform((40, 30), (110, 100), (5, 2))
        example = Pose2DExample('src.jpg', coords, [40, 30, 70, 70], camera=cam, densepose=dense)
        cropped = make_efficient_example(example, f'crop_{flip}_{cam is None}.jpg', data_root=tmp_path,
                                         horizontal_flip=flip)
        got = cropped.densepose
        assert isinstance(got, DensePose) and got.n_points == 40
        np.testing.assert_array_equal(got.i_faces, dense[1])
        np.testing.assert_allclose(got.barycoords, dense[2], atol=1e-7)
        if cam is not None:
            # the crop's camera (mirrored too, with the flip) maps the crop's points back to the source image
            back = reproject_image_points(got.imcoords.astype(np.float64), cropped.camera, cam)
            np.testing.assert_allclose(back, dense[0], atol=0.01)
        else:  # no camera: points and joints moved by the same plane-to-plane map (a homography)
            homography, _ = cv2.findHomography(coords, cropped.coords.astype(np.float64), 0)
            mapped = cv2.perspectiveTransform(dense[0][None].astype(np.float64), homography)[0]
            np.testing.assert_allclose(got.imcoords, mapped, atol=0.01)


def _dataset_with_densepose(root):
    rng = np.random.default_rng(4)
    examples = []
    for i in range(4):
        image = cv2.GaussianBlur(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8), (5, 5), 0)
        improc.write_jpeg_atomic(root / f'c/{i}.jpg', image, 95)
        dense = _densepose(rng, 3 + 4 * i) if i != 1 else None  # one example without DensePose
        examples.append(Pose2DExample(f'c/{i}.jpg', rng.uniform(0, 40, (3, 2)), [1, 2, 30, 40], densepose=dense))
    return Pose2DDataset(JointInfo('nose,lsho,rsho'), examples)


def test_dataset_cache_round_trip(tmp_path):
    dataset = _dataset_with_densepose(tmp_path)
    annotations.save_dataset(dataset, tmp_path / 'ds.posepile')
    loaded = annotations.load_dataset(tmp_path / 'ds.posepile')
    for a, b in zip(dataset.examples[TRAIN], loaded.examples[TRAIN]):
        assert (a.densepose is None) == (b.densepose is None)
        assert a.densepose is None or a.densepose == b.densepose
    plain = Pose2DDataset(JointInfo('nose'), [Pose2DExample('c/0.jpg', [[1, 2]], [0, 0, 5, 5])])
    annotations.save_dataset(plain, tmp_path / 'plain.posepile')  # no DensePose: no extra columns
    assert not list((tmp_path / 'plain.posepile').glob('densepose*'))
    assert annotations.load_dataset(tmp_path / 'plain.posepile').examples[TRAIN][0].densepose is None


@pytest.mark.parametrize('schema', barecat_store.SCHEMAS)
def test_barecat_round_trip_with_the_original_field_names_and_dtypes(tmp_path, schema):
    dataset = _dataset_with_densepose(tmp_path)
    barecat_store.export_dataset(dataset, tmp_path / 'out', image_root=tmp_path, schema=schema)
    store = barecat_store.open_dataset(tmp_path / 'out')
    for a, b in zip(dataset.examples[TRAIN], store.examples[TRAIN]):
        if a.densepose is None:
            assert b.densepose is None
            continue
        np.testing.assert_allclose(b.densepose.imcoords, a.densepose.imcoords, atol=0.06)  # float16 < 1 px
        np.testing.assert_array_equal(b.densepose.i_faces, a.densepose.i_faces)
        np.testing.assert_allclose(b.densepose.barycoords, a.densepose.barycoords, atol=1e-2)
    assert barecat_store.verify(tmp_path / 'out') == []
    encoded = barecat_store.encode_example_original(dataset.examples[TRAIN][2], 'x')['densepose']
    assert sorted(encoded) == ['barycoords', 'i_faces', 'imcoords']
    assert encoded['imcoords'].dtype == np.float16 and encoded['imcoords'].shape == (11, 2)
    assert encoded['i_faces'].dtype == np.uint16 and encoded['barycoords'].dtype == np.float16
    far = Pose2DExample('c/0.jpg', [[1, 2]], [0, 0, 5, 5], densepose=([[9001.5, 5.1]], [[1, 2, 3]], [[1, 0, 0]]))
    assert barecat_store.encode_example_original(far, 'x')['densepose']['imcoords'].dtype == np.float32
    huge = Pose2DExample('c/0.jpg', [[1, 2]], [0, 0, 5, 5], densepose=([[3, 5]], [[1, 2, 70000]], [[1, 0, 0]]))
    with pytest.raises(barecat_store.BarecatStoreError, match='uint16'):
        barecat_store.encode_example_original(huge, 'x')


def test_old_pickles_and_shapes():
    example = Pose2DExample('a.jpg', [[1, 2]], [0, 0, 1, 1])
    state = example.__getstate__()
    del state['densepose']  # a pickle from before the field existed
    old = Pose2DExample.__new__(Pose2DExample)
    old.__setstate__(state)
    assert old.densepose is None
    assert pickle.loads(pickle.dumps(example)).densepose is None
    with pytest.raises(ValueError, match='2 points, 3 face triplets'):
        Pose2DExample('a.jpg', [[1, 2]], [0, 0, 1, 1], densepose=(np.zeros((2, 2)), np.zeros((3, 3)), np.zeros((2, 3))))


def test_torch_adapter_pads_densepose(tmp_path):
    pytest.importorskip('torch')
    from posepile.storage.torch import TorchPoseDataset
    dataset = _dataset_with_densepose(tmp_path)
    barecat_store.export_dataset(dataset, tmp_path / 'out', image_root=tmp_path)
    items = TorchPoseDataset(tmp_path / 'out', output_size=64, max_densepose_points=8)
    assert items[0]['densepose_valid'].sum() == 3 and items[1]['densepose_valid'].sum() == 0
    assert items[3]['densepose_coords2d'].shape == (8, 2) and items[3]['densepose_valid'].all()


# ------------------------------------------------------------------------------------------------
# DensePose's own demo annotation (facebookresearch/DensePose demo_dp_single_ann.pkl): I, U, V and x, y in
# pixels of the crop ICrop (341 x 355), not the json's 0..255 box frame.
DEMO = 'densepose_coco/_derived_official_demo/DensePoseData/demo_data/demo_dp_single_ann.pkl'


def _demo(realdata):
    with open(realdata_file(realdata, DEMO), 'rb') as f:
        return pickle.load(f, encoding='latin1')


@pytest.mark.realdata
def test_real_demo_annotation_converts_and_maps(realdata, converter, tmp_path):
    demo = _demo(realdata)
    charts, u, v = (np.asarray(demo[k], np.float64).reshape(-1) for k in 'IUV')
    x, y = np.asarray(demo['x'], np.float64).reshape(-1), np.asarray(demo['y'], np.float64).reshape(-1)
    crop = np.asarray(demo['ICrop'])
    assert crop.shape == (355, 341, 3) and len(charts) == 125
    assert set(np.unique(charts)) <= set(range(1, 25)) and np.all((0 <= u) & (u <= 1) & (0 <= v) & (v <= 1))
    np.testing.assert_allclose([charts[0], u[0], v[0], x[0], y[0]], [2, 0.0566, 0.2801, 103.4827, 55.2096],
                               atol=1e-4)
    ids, bary = converter(charts, u, v)
    full = charts != fake.PARTIAL_CHART  # the synthetic charts other than 24 cover [0, 1]^2: no fallback there
    assert np.all(bary[full] >= 0) and np.count_nonzero(np.max(bary[full], 1) == 1) < 3
    # the json's box frame: the crop as the box inside a bigger image; dp = px / size * 255 maps back exactly
    offset = np.array([37, 21])
    box = [offset[0], offset[1], crop.shape[1], crop.shape[0]]
    points = dp_box_to_image(x / crop.shape[1] * 255, y / crop.shape[0] * 255, box, (500, 420))
    np.testing.assert_allclose(points, np.stack([x, y], 1) + offset, atol=1e-3)
    # and through a crop the points stay on the same image content (colour at the points, JPEG + resampling)
    canvas = np.zeros((420, 500, 3), np.uint8)
    canvas[offset[1]:offset[1] + crop.shape[0], offset[0]:offset[0] + crop.shape[1]] = crop
    improc.write_jpeg_atomic(tmp_path / 'demo.jpg', canvas, 98)
    smooth = cv2.GaussianBlur(canvas, (0, 0), 3).astype(np.float64)
    example = Pose2DExample('demo.jpg', points[:5], box, densepose=(points, ids, bary))
    cropped = make_efficient_example(example, 'demo_crop.jpg', data_root=tmp_path)
    out = cv2.GaussianBlur(improc.imread_rgb(tmp_path / 'demo_crop.jpg'), (0, 0), 3 * 384 / 355).astype(np.float64)

    def colours(img, pts):
        return cv2.remap(img.astype(np.float32), pts[:, :1].astype(np.float32)[None],
                         pts[:, 1:].astype(np.float32)[None], cv2.INTER_LINEAR)[0]
    before, after = colours(smooth, points), colours(out, cropped.densepose.imcoords)
    shuffled = colours(out, cropped.densepose.imcoords[::-1])
    error, baseline = np.mean(np.abs(after - before)), np.mean(np.abs(shuffled - before))
    assert error < 0.25 * baseline, (error, baseline)
