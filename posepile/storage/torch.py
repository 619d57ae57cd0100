"""PyTorch adapter for Barecat exports (optional extra: `pip install posepile[torch]`).

Each item is the stored crop re-rendered to a fixed square size around the person box (a perspective-correct
camera change, not a plain resize), with the joints projected through the new camera, so batches collate.
Works with `DataLoader(num_workers>0)`: every worker opens its own archive handles.
"""
import numpy as np

try:
    import torch
    from torch.utils.data import Dataset
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError('posepile.storage.torch needs PyTorch: pip install "posepile[torch]"') from e

from posepile.datasets3d import TRAIN
from posepile.storage.barecat_store import BarecatDataset
from posepile.util import boxes
from posepile.util.camera import reproject_image


def fixed_size_camera(camera, bbox, output_size, padding=1.25):
    """A distortion-free camera looking at the box centre whose view of the box fills `output_size` px."""
    new_camera = camera.copy()
    new_camera.turn_towards(target_image_point=boxes.center(bbox))
    new_camera.undistort()
    # The box seen from the turned camera, measured in that camera's pixels.
    from posepile.util.camera import reproject_box
    box_in_new = reproject_box(bbox, camera, new_camera)
    side = max(box_in_new[2], box_in_new[3]) * padding
    new_camera.shift_image(-boxes.center(box_in_new))
    new_camera.intrinsic_matrix[:2] *= output_size / side
    new_camera.shift_image([(output_size - 1) / 2, (output_size - 1) / 2])
    return new_camera


class TorchPoseDataset(Dataset):
    """Items: dict with
    image (3, S, S) uint8 RGB; coords2d (J, 2) float32 px in that image; coords3d_cam (J, 3) float32 mm in
    the new camera's frame (3D datasets); joint_valid (J,) bool; intrinsics (3, 3) float32; image_path str.
    With max_densepose_points = M > 0 (2D datasets), also the example's DensePose points, padded to M so that
    batches collate (the first M points when there are more): densepose_coords2d (M, 2) float32 px in the
    item's image (projected like the joints), densepose_i_faces (M, 3) int64 SMPL vertex ids,
    densepose_barycoords (M, 3) float32, densepose_valid (M,) bool (False for padding; all False for an
    example without DensePose).
    load_images=False: the annotations only (no `image`; the geometry as with images), e.g. to measure or
    to train on the joints alone.
    """

    def __init__(self, barecat_dir, split=TRAIN, output_size=256, padding=1.25, max_densepose_points=0,
                 load_images=True):
        self.store = BarecatDataset(barecat_dir, load_images=load_images)
        self.load_images = load_images
        self.split = split
        self.output_size = output_size
        self.padding = padding
        self.max_densepose_points = int(max_densepose_points)
        self.joint_info = self.store.joint_info

    def __len__(self):
        return len(self.store.examples[self.split])

    def __getitem__(self, index):
        example = self.store.examples[self.split][index]
        size = self.output_size
        camera = example.camera
        if camera is None:  # 2D datasets without a camera: a pinhole camera of the crop itself
            from posepile.util.camera import Camera
            h, w = example.image.shape[:2] if example.image is not None else (size, size)
            camera = Camera(intrinsic_matrix=[[max(h, w), 0, (w - 1) / 2], [0, max(h, w), (h - 1) / 2],
                                              [0, 0, 1]], world_up=(0, -1, 0))
        new_camera = fixed_size_camera(camera, example.bbox, size, self.padding)
        item = {'intrinsics': torch.from_numpy(new_camera.intrinsic_matrix.astype(np.float32)),
                'image_path': str(example.image_path)}
        if self.load_images:
            if example.image is None:  # an annotation-only archive: the crop under DATA_ROOT
                example.image = self.store.read_image(example.image_path)
            image = reproject_image(example.image, camera, new_camera, (size, size), antialias_factor=2)
            item['image'] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if self.store.is_3d:
            world = example.world_coords
            if world is None:  # parametric-only example: no joints stored (body-model parameters only)
                world = np.full((self.joint_info.n_joints, 3), np.nan, np.float32)
            coords_cam = new_camera.world_to_camera(world)
            item['coords3d_cam'] = torch.from_numpy(coords_cam.astype(np.float32))
            coords2d = new_camera.camera_to_image(coords_cam)
        else:
            from posepile.util.camera import reproject_image_points
            coords2d = reproject_image_points(example.coords, camera, new_camera)
        item['coords2d'] = torch.from_numpy(coords2d.astype(np.float32))
        item['joint_valid'] = torch.from_numpy(np.all(np.isfinite(coords2d), axis=-1))
        if self.max_densepose_points > 0 and not self.store.is_3d:
            item.update(_padded_densepose(example.densepose, camera, new_camera, self.max_densepose_points))
        return item


def _padded_densepose(densepose, camera, new_camera, n_points):
    """DensePose arrays of one item, projected into the item's image and padded to n_points."""
    from posepile.util.camera import reproject_image_points
    coords = np.full((n_points, 2), np.nan, np.float32)
    faces = np.zeros((n_points, 3), np.int64)
    barycoords = np.zeros((n_points, 3), np.float32)
    valid = np.zeros(n_points, bool)
    if densepose is not None and densepose.n_points:
        n = min(n_points, densepose.n_points)
        coords[:n] = reproject_image_points(densepose.imcoords[:n], camera, new_camera)
        faces[:n] = densepose.i_faces[:n]
        barycoords[:n] = densepose.barycoords[:n]
        valid[:n] = np.all(np.isfinite(coords[:n]), axis=-1)
    return {'densepose_coords2d': torch.from_numpy(coords), 'densepose_i_faces': torch.from_numpy(faces),
            'densepose_barycoords': torch.from_numpy(barycoords), 'densepose_valid': torch.from_numpy(valid)}
