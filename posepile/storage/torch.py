"""PyTorch adapter for Barecat exports (optional extra: `pip install posepile[torch]`).

Each item is the stored crop re-rendered to a fixed square size around the person box (a perspective-correct
camera change, not a plain resize), with the joints projected through the new camera, so batches collate.
Works with `DataLoader(num_workers>0)`: every worker opens its own archive handles.
"""
import math

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
    if camera.distortion_coeffs is None:  # a pinhole (every crop): the same arithmetic, without the overhead
        R, K = _fixed_size_pinhole(camera, bbox, output_size, padding)
        new_camera = camera.copy()
        new_camera.R = R
        new_camera.intrinsic_matrix = K
        new_camera.undistort()
        return new_camera
    return _fixed_size_camera_generic(camera, bbox, output_size, padding)


def _fixed_size_camera_generic(camera, bbox, output_size, padding=1.25):
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


def _fixed_size_pinhole(camera, bbox, output_size, padding):
    """(R, K) of fixed_size_camera for a camera without lens distortion.

    The operations of Camera.turn_towards, reproject_box (Camera.image_to_rays, camera_to_image,
    boxes.bb_of_points) and the shifts/scaling restated on Python floats in the same order, with the same numpy
    matrix products: the same float64 results (tests/test_torch_adapter.py compares them), at a fraction of the
    cost of the ~100 small numpy calls of the general path (most of an annotation-only item's time).
    """
    K = camera.intrinsic_matrix
    R = camera.R
    t = camera.t
    k = K[:2].tolist()
    (k00, k01, k02), (_, k11, k12) = k
    box = np.asarray(bbox, np.float64).tolist()
    x, y, w, h = box

    # turn_towards(target_image_point=boxes.center(bbox))
    ny = (y + h / 2 - k12) / k11
    nx = (x + w / 2 - k02 - k01 * ny) / k00
    ray_norm = math.sqrt(nx * nx + ny * ny + 1.0)
    ray = np.array([nx / ray_norm, ny / ray_norm, 1.0 / ray_norm])
    target = (ray * 1000.0) @ R + t
    f0, f1, f2 = (target - t).tolist()
    norm = math.sqrt(f0 * f0 + f1 * f1 + f2 * f2)
    f0, f1, f2 = f0 / norm, f1 / norm, f2 / norm
    u0, u1, u2 = camera.world_up.tolist()
    r0, r1, r2 = f1 * u2 - f2 * u1, f2 * u0 - f0 * u2, f0 * u1 - f1 * u0
    norm_right = math.sqrt(r0 * r0 + r1 * r1 + r2 * r2)
    if norm_right < 1e-8:  # looking along the up vector: the general path's fallback
        new_camera = camera.copy()
        new_camera.turn_towards(target_image_point=boxes.center(bbox))
        return _finish_pinhole(camera, k, box, new_camera.R, output_size, padding)
    r0, r1, r2 = r0 / norm_right, r1 / norm_right, r2 / norm_right
    new_R = np.array([[r0, r1, r2],
                      [f1 * r2 - f2 * r1, f2 * r0 - f0 * r2, f0 * r1 - f1 * r0],
                      [f0, f1, f2]])
    return _finish_pinhole(camera, k, box, new_R, output_size, padding)


def _finish_pinhole(camera, k, box, new_R, output_size, padding):
    """(R, K) from the turned rotation: the box seen by the turned camera, then the shifts and the zoom."""
    (k00, k01, k02), (k10, k11, k12) = k
    x, y, w, h = box
    # reproject_box(bbox, camera, turned camera): the box's side midpoints as rays, seen by the turned camera
    points = ((x + w / 2, y), (x + w, y + h / 2), (x + w / 2, y + h), (x, y + h / 2))
    rays = []
    for px, py in points:
        ny = (py - k12) / k11
        nx = (px - k02 - k01 * ny) / k00
        norm = math.sqrt(nx * nx + ny * ny + 1.0)
        rays.append((nx / norm, ny / norm, 1.0 / norm))
    new_rays = ((np.array(rays) @ camera.R) @ new_R.T).tolist()
    us, vs = [], []
    for rx, ry, rz in new_rays:
        if not rz > 0:  # a pinhole camera sees nothing behind it
            continue
        nx, ny = rx / rz, ry / rz
        u, v = k00 * nx + k01 * ny + k02, k11 * ny + k12
        if math.isfinite(u) and math.isfinite(v):
            us.append(u)
            vs.append(v)
    if us:
        box = np.array([min(us), min(vs), max(us) - min(us), max(vs) - min(vs)], np.float32)
    else:
        box = np.full(4, np.nan, np.float32)
    side = max(box[2], box[3]) * padding  # float32, as in the general path
    bx, by, bw, bh = box.astype(np.float64).tolist()
    # shift_image(-box centre), intrinsic_matrix[:2] *= output_size / side, shift_image(output centre)
    zoom = float(output_size / side)  # (float32, as in the general path)
    half = (output_size - 1) / 2
    new_K = np.array([[k00 * zoom, k01 * zoom, (k02 + -(bx + bw / 2)) * zoom + half],
                      [k10 * zoom, k11 * zoom, (k12 + -(by + bh / 2)) * zoom + half],
                      camera.intrinsic_matrix[2]])
    return new_R, new_K


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
        if camera.distortion_coeffs is None and self.store.is_3d and not self.load_images:
            # the annotation-only 3D item (the common training read): no Camera object for the new view
            return self._pinhole_3d_item(example, camera)
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


    def _pinhole_3d_item(self, example, camera):
        """__getitem__ of a 3D example through a pinhole camera, without images: Camera.world_to_camera and
        camera_to_image of the fixed-size camera restated on its (R, K) (same operations, same order)."""
        R, K = _fixed_size_pinhole(camera, example.bbox, self.output_size, self.padding)
        world = example.world_coords
        if world is None:  # parametric-only example: no joints stored (body-model parameters only)
            world = np.full((self.joint_info.n_joints, 3), np.nan, np.float32)
        coords_cam = (np.asarray(world, np.float64) - camera.t) @ R.T
        (k00, k01, k02), (_, k11, k12) = K[0].tolist(), K[1].tolist()
        with np.errstate(divide='ignore', invalid='ignore'):
            normalized = coords_cam[..., :2] / coords_cam[..., 2:3]
        coords2d = np.empty(normalized.shape)
        x, y = normalized[..., 0], normalized[..., 1]
        coords2d[..., 0] = k00 * x + k01 * y + k02
        coords2d[..., 1] = k11 * y + k12
        return {'intrinsics': torch.from_numpy(K.astype(np.float32)), 'image_path': str(example.image_path),
                'coords3d_cam': torch.from_numpy(coords_cam.astype(np.float32)),
                'coords2d': torch.from_numpy(coords2d.astype(np.float32)),
                'joint_valid': torch.from_numpy(np.isfinite(coords2d).all(axis=-1))}


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
