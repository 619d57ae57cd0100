import numpy as np
import pytest

torch = pytest.importorskip('torch', reason='PyTorch not installed (pip install "posepile[torch]")')

import cv2  # noqa: E402

from posepile.datasets3d import TRAIN, Pose3DDataset, Pose3DExample  # noqa: E402
from posepile.joint_info import JointInfo  # noqa: E402
from posepile.storage import barecat_store  # noqa: E402
from posepile.util.camera import Camera  # noqa: E402


def _marker_dataset(root, n=6):
    """Crops with one bright dot per joint, at the joint's projection through the example camera."""
    rng = np.random.default_rng(1)
    ji = JointInfo('pelv,head,lwri', 'pelv-head')
    examples = []
    for i in range(n):
        cam = Camera([0, 0, 0], None, [[400, 0, 159.5], [0, 400, 119.5], [0, 0, 1]], world_up=(0, -1, 0))
        center = np.array([rng.uniform(-300, 300), rng.uniform(-200, 200), 3000])
        coords = center + np.array([[0, 300, 0], [0, -400, 0], [350, 0, 0]]) + rng.normal(0, 30, (3, 3))
        image = np.full((240, 320, 3), 40, np.uint8)
        px = cam.world_to_image(coords)
        for u, v in px:
            cv2.circle(image, (int(round(u * 16)), int(round(v * 16))), 3 * 16, (255, 255, 255), -1,
                       lineType=cv2.LINE_AA, shift=4)
        relpath = f'crops/{i}.png'
        (root / 'crops').mkdir(exist_ok=True, parents=True)
        cv2.imwrite(str(root / relpath), image)
        x0, y0 = px.min(0) - 20
        x1, y1 = px.max(0) + 20
        examples.append(Pose3DExample(relpath, coords, [x0, y0, x1 - x0, y1 - y0], cam))
    return Pose3DDataset(ji, examples)


def _blob_centroids(gray, n):
    _, binary = cv2.threshold(gray, 128, 255, cv2.THRESH_BINARY)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(binary)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:n] + 1
    return centroids[order]


@pytest.mark.parametrize('layout', ['original', 'posepile', 'original-tools'])
def test_dataloader_with_workers_gives_fixed_size_items_with_joints_on_content(tmp_path, monkeypatch, layout):
    ds = _marker_dataset(tmp_path)
    if layout == 'original-tools':
        # an archive as the original PosePile tools write it (int16 boxes, zlib'd masks, no key table)
        from tests.test_barecat_original_schema import write_original_archive
        write_original_archive(tmp_path / 'bc', ds, tmp_path)
    else:
        barecat_store.export_dataset(ds, tmp_path / 'bc', image_root=tmp_path, schema=layout)
    from posepile.storage.torch import TorchPoseDataset
    torch_ds = TorchPoseDataset(tmp_path / 'bc', TRAIN, output_size=128)
    loader = torch.utils.data.DataLoader(torch_ds, batch_size=3, num_workers=2)
    batches = list(loader)
    assert len(batches) == 2
    batch = batches[0]
    assert batch['image'].shape == (3, 3, 128, 128) and batch['image'].dtype == torch.uint8
    assert batch['coords3d_cam'].shape == (3, 3, 3)
    errors = []
    for b in batches:
        for image, coords2d in zip(b['image'].numpy(), b['coords2d'].numpy()):
            found = _blob_centroids(image[0], 3)
            dists = np.linalg.norm(found[:, None] - coords2d[None], axis=-1)
            errors.extend(dists.min(axis=0))
    # Dots are re-rendered by a perspective camera change; their centres stay on the projected joints.
    assert np.max(errors) < 0.5, errors
    # Depth is preserved: the camera only rotated about its centre.
    # (the original layout stores float16 rows when they round to within 1 mm)
    np.testing.assert_allclose(np.linalg.norm(batch['coords3d_cam'][0].numpy(), axis=-1),
                               np.linalg.norm(ds.examples[TRAIN][0].world_coords, axis=-1),
                               rtol=1e-5, atol=1.0 if layout.startswith('original') else 0)


# ------------------------------------------------------------------------------------------------------
# The pinhole fast path (issue 33) against the general arithmetic restated here
def _reference_fixed_size_camera(camera, bbox, output_size, padding=1.25):
    """fixed_size_camera as first written: Camera.turn_towards, reproject_box, shifts and zoom."""
    from posepile.util import boxes
    from posepile.util.camera import reproject_box
    new_camera = camera.copy()
    new_camera.turn_towards(target_image_point=boxes.center(bbox))
    new_camera.undistort()
    box_in_new = reproject_box(bbox, camera, new_camera)
    side = max(box_in_new[2], box_in_new[3]) * padding
    new_camera.shift_image(-boxes.center(box_in_new))
    new_camera.intrinsic_matrix[:2] *= output_size / side
    new_camera.shift_image([(output_size - 1) / 2, (output_size - 1) / 2])
    return new_camera


def _reference_item(example, n_joints, output_size=256, padding=1.25):
    """An annotation-only 3D item as TorchPoseDataset first computed it (Camera methods throughout)."""
    new_camera = _reference_fixed_size_camera(example.camera, example.bbox, output_size, padding)
    world = example.world_coords
    if world is None:
        world = np.full((n_joints, 3), np.nan, np.float32)
    coords_cam = new_camera.world_to_camera(world)
    coords2d = new_camera.camera_to_image(coords_cam)
    return {'intrinsics': new_camera.intrinsic_matrix.astype(np.float32), 'image_path': str(example.image_path),
            'coords3d_cam': coords_cam.astype(np.float32), 'coords2d': coords2d.astype(np.float32),
            'joint_valid': np.all(np.isfinite(coords2d), axis=-1)}


def _random_camera(rng, i, distorted=False):
    from scipy.spatial.transform import Rotation
    f = rng.uniform(150, 3000)
    K = [[f, rng.normal(0, 3) if i % 3 == 0 else 0, rng.uniform(0, 1500)],
         [0, f * rng.uniform(0.9, 1.1), rng.uniform(0, 1500)], [0, 0, 1]]
    up = rng.normal(size=3) if i % 2 else (0, -1, 0)
    dist = rng.normal(0, 0.01, 5) if distorted else None
    R = Rotation.from_rotvec(rng.normal(0, 0.7, 3)).as_matrix()
    return Camera(rng.normal(0, 1000, 3), R, K, dist, world_up=up)


def _assert_items_equal(item, ref):
    assert list(item) == list(ref)
    for key, value in ref.items():
        if key == 'image_path':
            assert item[key] == value
            continue
        got = item[key].numpy()
        assert got.dtype == value.dtype and got.shape == value.shape, key
        np.testing.assert_array_equal(got, value, err_msg=key)  # bit for bit (NaN where NaN)


@pytest.mark.filterwarnings('ignore::RuntimeWarning')  # zero-size and NaN boxes
def test_fixed_size_camera_pinhole_path_equals_the_general_arithmetic():
    from posepile.storage.torch import fixed_size_camera
    rng = np.random.default_rng(3)
    cases = []
    for i in range(3000):
        camera = _random_camera(rng, i, distorted=i % 10 == 9)  # distorted: the general path
        bbox = np.array([rng.uniform(-500, 2000), rng.uniform(-500, 2000), rng.uniform(0, 3000),
                         rng.uniform(0, 3000)], np.float32)
        cases.append((camera, bbox, int(rng.choice([64, 256, 384])), float(rng.choice([1.0, 1.25]))))
    cam = Camera([0, 0, 0], None, [[500, 0, 100], [0, 500, 100], [0, 0, 1]], world_up=(0, 0, 1))
    cases.append((cam, np.array([50, 50, 100, 100], np.float32), 256, 1.25))  # looking along world_up
    cases.append((cam, np.full(4, np.nan, np.float32), 256, 1.25))
    cases.append((cam, [90, 90, 20, 20], 256, 1.25))  # a list box
    for camera, bbox, size, padding in cases:
        got = fixed_size_camera(camera, bbox, size, padding)
        ref = _reference_fixed_size_camera(camera, bbox, size, padding)
        for attr in ('R', 'intrinsic_matrix', 't', 'world_up'):
            np.testing.assert_array_equal(getattr(got, attr), getattr(ref, attr), err_msg=attr)
        assert got.distortion_coeffs is None and got.distortion_model == ref.distortion_model == 'opencv'
        assert sorted(got.__dict__) == sorted(ref.__dict__)


@pytest.mark.filterwarnings('ignore::RuntimeWarning')  # the zero-size boxes: inf zoom, as ever
@pytest.mark.parametrize('layout', ['original', 'posepile'])
def test_annotation_only_items_equal_the_general_arithmetic(tmp_path, layout):
    rng = np.random.default_rng(4)
    ji = JointInfo('pelv,head,lwri,rwri', 'pelv-head,pelv-lwri,pelv-rwri')
    examples = []
    for i in range(60):
        camera = _random_camera(rng, i, distorted=i % 10 == 9)
        coords = camera.camera_to_world(rng.normal([0, 0, 4000], [400, 400, 300], (4, 3)))
        if i % 4 == 1:
            coords[rng.integers(4)] = np.nan
        px = camera.world_to_image(coords)
        x0, y0 = np.nanmin(px, 0) - 20
        x1, y1 = np.nanmax(px, 0) + 20
        bbox = [x0, y0, x1 - x0, y1 - y0] if i % 7 else [x0, y0, 0, 0]
        examples.append(Pose3DExample(f'crops/{i}.jpg', coords, bbox, camera))
    ds = Pose3DDataset(ji, examples)
    barecat_store.export_dataset(ds, tmp_path / 'bc', include_images=False, schema=layout)
    from posepile.storage.torch import TorchPoseDataset
    torch_ds = TorchPoseDataset(tmp_path / 'bc', TRAIN, load_images=False)
    raw = barecat_store.BarecatDataset(tmp_path / 'bc', load_images=False)
    assert len(torch_ds) == len(examples)
    for i in range(len(torch_ds)):
        _assert_items_equal(torch_ds[i], _reference_item(raw.examples[TRAIN][i], ji.n_joints))
