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
