"""Perspective-correct person crops ("efficient examples").

For each example the camera is turned to look at the person box centre and its lens distortion is removed, so
the crop is what an ideal pinhole camera pointed at the person would have seen. The box is expanded so that
training-time augmentation (rotation up to 30 deg, shifts, zoom-out) never runs out of pixels, and the image
is resampled so that the person's longer box side becomes at most 384 px (never upsampled > 1.2x). World
coordinates are unchanged: projecting them with the example's new camera lands on the crop.

When the crop is much smaller than the source, the needed region is first box-filtered in linear light (gamma
2.2 undone, then re-applied) to about the output size, so shrinking neither aliases nor darkens fine detail;
the remaining warp runs at about 1:1 (bilinear by default, bicubic on request). When the crop is at most 1/2,
1/4 or 1/8 of the source resolution the JPEG is decoded at that reduced size in the DCT domain, which is much
faster.
"""
import copy
import logging
import os
from pathlib import Path

import cv2
import numpy as np

from posepile.util import boxes, image_sources, improc, masks
from posepile.util.camera import Camera, reproject_box, reproject_box_corners, reproject_image, \
    reproject_image_points

logger = logging.getLogger(__name__)

# Expansion of the person box: room for 1/0.85 padding, 1.1 random shift and 1/0.85 random zoom-out.
BOX_EXPANSION = (1 / 0.85) * 1.1 * (1 / 0.85)
MAX_AUGMENTATION_ROTATION_DEG = 30
# The longer side of the person box becomes 1.5 * 256 = 384 px in the crop, never upsampled beyond 1.2x.
TARGET_BOX_SIDE_PX = 256 * 1.5
MAX_UPSCALE = 1.2
JPEG_QUALITY = 95


class CropError(ValueError):
    pass


def expanded_crop_box(box, further_expansion_factor=1.0):
    """Square box centred on `box` that contains it under any rotation up to 30 deg, then expanded.

    A factor <= 0 disables the expansion (the square is returned as is).
    """
    x, y, w, h = box
    angle = np.deg2rad(MAX_AUGMENTATION_ROTATION_DEG)
    c, s = np.cos(angle), np.sin(angle)
    side = max(c * w + s * h, c * h + s * w)
    square = np.array([x + w / 2 - side / 2, y + h / 2 - side / 2, side, side], np.float64)
    if further_expansion_factor <= 0:
        return square
    return boxes.expand(square, BOX_EXPANSION * further_expansion_factor)


def output_scale_for_box(box):
    """Resampling factor: the box's longer side becomes 384 px, capped at 1.2x upsampling."""
    return min(MAX_UPSCALE, TARGET_BOX_SIDE_PX / max(box[2], box[3]))


def plan_crop(camera, bbox, imshape, further_expansion_factor=1.0, extreme_perspective=False,
              max_angle_from_axis_deg=None):
    """Geometry of one crop without touching pixels.

    Returns (new_camera, new_bbox, output_shape (H, W)). new_camera looks at the box centre, has no
    distortion, and maps world points to crop pixels. Unless `extreme_perspective`, the crop is limited to
    the source image and, for fisheye cameras, to its valid image circle (`Camera.valid_image_radius`, with
    `max_angle_from_axis_deg` the lens' own field, e.g. 95 for a 190 deg lens).
    """
    bbox = np.asarray(bbox, np.float64)
    if not np.all(np.isfinite(bbox)) or bbox[2] <= 0 or bbox[3] <= 0:
        raise CropError(f'invalid person box {bbox.tolist()}')
    new_camera = camera.copy()
    new_camera.turn_towards(target_image_point=boxes.center(bbox))
    new_camera.undistort()
    reprojected_box = reproject_box(bbox, camera, new_camera)
    crop_box = expanded_crop_box(reprojected_box, further_expansion_factor)
    if not extreme_perspective:
        if camera.is_fisheye():
            crop_box = _shrink_into_valid_region(crop_box, camera, new_camera, imshape, max_angle_from_axis_deg)
        else:
            crop_box = boxes.intersection(crop_box, _visible_box(camera, new_camera, imshape))
        if not (crop_box[2] > 0 and crop_box[3] > 0):
            raise CropError(f'person box {bbox.tolist()} lies outside the image of shape {imshape[:2]}')
    scale = output_scale_for_box(reprojected_box)
    new_camera.shift_image(-crop_box[:2])
    new_camera.scale_output(scale)
    output_shape = (max(1, int(round(scale * crop_box[3]))), max(1, int(round(scale * crop_box[2]))))
    new_bbox = np.array([*(reprojected_box[:2] - crop_box[:2]) * scale + (scale - 1) / 2,
                         *(reprojected_box[2:] * scale)], np.float32)
    return new_camera, new_bbox, output_shape


def _visible_box(camera, new_camera, imshape, n_per_side=64):
    """Box (in `new_camera` pixels) of the part of the source image that `new_camera` sees.

    The box of the reprojected image corners (as the original), when all of them are in front of the new
    camera. Otherwise the box of points sampled along the image border, where a border ray behind the new
    camera is moved to its horizon (the box extends without limit that way); NaN when the whole border is
    behind the new camera.
    """
    visible = reproject_box_corners(boxes.full_box(imshape), camera, new_camera)
    if np.all(np.isfinite(visible)):
        return visible
    height, width = imshape[:2]
    edge = np.linspace(0, 1, n_per_side)
    border = np.concatenate([
        np.stack([edge * width, np.zeros(n_per_side)], 1), np.stack([edge * width, np.full(n_per_side, height)], 1),
        np.stack([np.zeros(n_per_side), edge * height], 1), np.stack([np.full(n_per_side, width), edge * height], 1)])
    rays = camera.image_to_rays(border) @ camera.R @ new_camera.R.T
    rays = rays[np.all(np.isfinite(rays), axis=1)]
    if not np.any(rays[:, 2] > 0):
        return np.full(4, np.nan, np.float32)
    rays[:, 2] = np.maximum(rays[:, 2], 1e-6)
    return boxes.bb_of_points(new_camera.camera_to_image(rays))


def _shrink_into_valid_region(crop_box, camera, new_camera, imshape, max_angle_from_axis_deg=None,
                              n_per_side=32, n_bisections=12):
    """The crop box (in `new_camera` pixels), its sides moved in until everything it shows comes from inside
    the fisheye source image and its valid image circle (`Camera.valid_image_radius`).

    First the largest copy of the box scaled about its centre (the person) that fits, then each side moved
    back out as far as it fits with the others fixed. A zero-size box when even the centre is outside.
    """
    radius = camera.valid_image_radius(max_angle_from_axis_deg)
    principal_point = camera.intrinsic_matrix[:2, 2]
    height, width = imshape[:2]

    def fits(x0, y0, x1, y1):
        edge = np.linspace(0, 1, n_per_side)
        xs, ys = x0 + edge * (x1 - x0), y0 + edge * (y1 - y0)
        border = np.concatenate([np.stack([xs, np.full(n_per_side, y0)], 1), np.stack([xs, np.full(n_per_side, y1)], 1),
                                 np.stack([np.full(n_per_side, x0), ys], 1), np.stack([np.full(n_per_side, x1), ys], 1)])
        source = reproject_image_points(border, new_camera, camera)
        with np.errstate(invalid='ignore'):
            return bool(np.all((source[:, 0] >= -0.5) & (source[:, 0] <= width - 0.5) & (source[:, 1] >= -0.5)
                               & (source[:, 1] <= height - 0.5)
                               & (np.linalg.norm(source - principal_point, axis=1) <= radius)))

    x, y, w, h = np.asarray(crop_box, np.float64)
    outer = np.array([x, y, x + w, y + h])
    center = np.array([x + w / 2, y + h / 2, x + w / 2, y + h / 2])
    if fits(*outer):
        return np.asarray(crop_box, np.float32)
    if not fits(*(center + [-1e-3, -1e-3, 1e-3, 1e-3])):
        return np.array([x + w / 2, y + h / 2, 0, 0], np.float32)
    lo, hi = 0.0, 1.0  # the largest scale about the centre that fits
    for _ in range(n_bisections):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(*(center + mid * (outer - center))) else (lo, mid)
    box = center + lo * (outer - center)
    for side in range(4):  # then each side out again as far as it fits
        lo, hi = box[side], outer[side]
        for _ in range(n_bisections):
            mid = (lo + hi) / 2
            candidate = box.copy()
            candidate[side] = mid
            lo, hi = (mid, hi) if fits(*candidate) else (lo, mid)
        box[side] = lo
    return np.array([box[0], box[1], box[2] - box[0], box[3] - box[1]], np.float32)


def crop_to_source_scale(old_camera, new_camera, output_shape):
    """Crop pixels per source pixel, for choosing antialiasing and decode reductions.

    The ratio of focal lengths, except for fisheye sources, whose magnification changes across the image:
    there it is measured at the crop centre along the direction that is sampled most densely.
    """
    scale = new_camera.intrinsic_matrix[0, 0] / old_camera.intrinsic_matrix[0, 0]
    if not old_camera.is_fisheye():
        return scale
    center = np.array([(output_shape[1] - 1) / 2, (output_shape[0] - 1) / 2])
    probe = reproject_image_points(np.stack([center, center + [1, 0], center + [0, 1]]), new_camera, old_camera)
    source_steps = np.linalg.norm(probe[1:] - probe[0], axis=1)
    if not np.all(np.isfinite(source_steps)) or np.min(source_steps) <= 0:
        return scale
    return float(1 / np.min(source_steps))


def _source_region(old_camera, new_camera, output_shape, imshape, margin=4):
    """Integer box [x0, y0, x1, y1) of the source image that the crop samples from (plus a margin)."""
    h, w = output_shape
    n = 16
    edge = np.linspace(-0.5, 1, n)
    xs, ys = edge * w, edge * h
    border = np.concatenate([
        np.stack([xs, np.full(n, -0.5)], 1), np.stack([xs, np.full(n, h - 0.5)], 1),
        np.stack([np.full(n, -0.5), ys], 1), np.stack([np.full(n, w - 0.5), ys], 1)])
    old_points = reproject_image_points(border, new_camera, old_camera)
    old_points = old_points[np.all(np.isfinite(old_points), axis=1)]
    if len(old_points) < len(border):
        return 0, 0, imshape[1], imshape[0]  # strongly distorted edges: sample from the whole image
    x0, y0 = np.floor(old_points.min(0)).astype(int) - margin
    x1, y1 = np.ceil(old_points.max(0)).astype(int) + margin + 1
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(imshape[1], x1), min(imshape[0], y1)
    if x1 <= x0 or y1 <= y0:
        return 0, 0, 1, 1
    return x0, y0, x1, y1


def render_crop(image, old_camera, new_camera, output_shape, image_adjustments_3dhp=False,
                decode_scale=1, interpolation=cv2.INTER_LINEAR):
    """Resample `image` (uint8 RGB, possibly decoded at 1/decode_scale) into the crop.

    Only the source region the crop needs is touched. When the crop shrinks the source by 1.5x or more,
    the region is first box-filtered by the nearest integer factor in linear light (gamma-correct
    antialiasing); the remaining rotation/perspective/distortion warp then runs at close to 1:1 with
    `interpolation` (bilinear by default: 8x faster than OpenCV's bicubic remap, and at most a 1.2x
    enlargement remains; pass cv2.INTER_CUBIC for the original's bicubic).
    """
    if decode_scale != 1:
        old_camera = old_camera.copy().scale_output(1 / decode_scale)
    x0, y0, x1, y1 = _source_region(old_camera, new_camera, output_shape, image.shape)
    region = image[y0:y1, x0:x1]
    region_camera = old_camera.copy().shift_image([-x0, -y0])
    scale = crop_to_source_scale(region_camera, new_camera, output_shape)
    factor = int(round(1 / scale)) if scale < 1 / 1.5 else 1
    if factor > 1 and min(region.shape[:2]) >= factor:
        region = improc.downscale_gamma_correct(region, factor)
        region_camera = region_camera.scale_output(1 / factor)
        scale *= factor
    result = reproject_image(region, region_camera, new_camera, output_shape, interp=interpolation)
    if image_adjustments_3dhp:
        result = improc.white_balance_3dhp(result)
    return result


def reproject_mask(rle, old_camera, new_camera, output_shape):
    """Person mask (RLE in the source image) -> RLE in the crop (bilinear, threshold at one half)."""
    full = masks.decode(rle).astype(np.uint8) * 255
    warped = reproject_image(full, old_camera, new_camera, output_shape, interp=cv2.INTER_LINEAR)
    return masks.encode(warped > 127)


def _source_image_and_shape(example, data_root):
    """(image array or None, absolute path or None, (H, W))."""
    source = example.image if example.image is not None else example.image_path
    if isinstance(source, np.ndarray) and not (source.ndim == 1 and source.dtype == np.uint8):
        return source, None, source.shape[:2]
    if isinstance(source, (bytes, bytearray, np.ndarray)) or image_sources.is_member_path(source):
        # encoded bytes (in memory, or a '<zip or HDF5>::<member>' path read in place): decoded later at scale
        data = bytes(source) if not isinstance(source, str) else image_sources.read_image_bytes(source, data_root)
        return data, (source if isinstance(source, str) else None), improc.image_size_from_header(data)
    path = Path(source)
    if not path.is_absolute():
        path = Path(data_root) / path
    if not path.exists():
        raise FileNotFoundError(f'source image of the example not found: {path}')
    try:
        imshape = improc.image_size_from_header(path)
    except improc.ImageDecodeError:
        image = improc.imread_rgb(path, strict=True)
        return image, path, image.shape[:2]
    return None, path, imshape


def _trivial_camera(imshape):
    """A pinhole camera for 2D-only examples (pure image-plane crops behave as with a real camera)."""
    focal = float(max(imshape[:2]))
    return Camera(intrinsic_matrix=[[focal, 0, (imshape[1] - 1) / 2], [0, focal, (imshape[0] - 1) / 2],
                                    [0, 0, 1]], world_up=(0, -1, 0))


def make_efficient_example(example, new_image_relpath, *, further_expansion_factor=1.0,
                           image_adjustments_3dhp=False, horizontal_flip=False, extreme_perspective=False,
                           data_root=None, skip_existing=True, downscale_at_decode=True,
                           interpolation=cv2.INTER_LINEAR, max_angle_from_axis_deg=None):
    """Write the crop of `example` to `data_root/new_image_relpath` (JPEG q95, atomically) and return a
    new example whose image_path, camera, bbox, mask (and 2D coords and DensePose points) refer to the crop.

    `max_angle_from_axis_deg`: the field of a fisheye lens (see plan_crop).
    With skip_existing, the pixels are not re-rendered when a readable JPEG already exists there (the
    annotation is always recomputed, so a resumed run returns identical examples).
    """
    if data_root is None:
        from posepile.paths import data_root as get_data_root
        data_root = get_data_root()
    is_3d = hasattr(example, 'world_coords')
    image, source_path, imshape = _source_image_and_shape(example, data_root)
    old_camera = example.camera if example.camera is not None else _trivial_camera(imshape)
    try:
        new_camera, new_bbox, output_shape = plan_crop(
            old_camera, example.bbox, imshape, further_expansion_factor, extreme_perspective,
            max_angle_from_axis_deg)
    except CropError as e:
        raise CropError(f'{source_path or "<in-memory image>"}: {e}') from None

    out_path = Path(data_root) / new_image_relpath
    if not (skip_existing and improc.is_readable_image(out_path)):
        scale = crop_to_source_scale(old_camera, new_camera, output_shape)
        decode_scale = improc.choose_decode_scale(scale) if downscale_at_decode else 1
        if isinstance(image, bytes):
            decode_scale = decode_scale if image[:2] == b'\xff\xd8' else 1  # DCT-domain reduction: JPEG only
            image = image_sources.decode_image(image, source_path or '<in-memory image>', decode_scale)
        elif image is None:
            image = improc.imread_rgb(source_path, decode_scale, strict=True)
            if image.shape[0] * decode_scale < imshape[0] - decode_scale:
                raise improc.ImageDecodeError(f'{source_path}: decoded size {image.shape} does not match '
                                              f'header size {imshape}')
        else:
            decode_scale = 1
        crop = render_crop(image, old_camera, new_camera, output_shape, image_adjustments_3dhp,
                           decode_scale, interpolation)
        if horizontal_flip:
            crop = crop[:, ::-1]
        out_path.parent.mkdir(parents=True, exist_ok=True)
        improc.write_jpeg_atomic(out_path, crop, JPEG_QUALITY)

    new_example = copy.copy(example)
    new_example.image = None
    new_example.image_path = str(new_image_relpath)
    if example.mask is not None and isinstance(example.mask, dict):
        new_example.mask = reproject_mask(example.mask, old_camera, new_camera, output_shape)
    if not is_3d:
        new_example.coords = reproject_image_points(example.coords, old_camera, new_camera).astype(np.float32)
    densepose = getattr(example, 'densepose', None)
    if densepose is not None:  # dense points move like the joints; their body correspondences stay
        new_example.densepose = densepose._replace(
            imcoords=reproject_image_points(densepose.imcoords, old_camera, new_camera).astype(np.float32))
    if horizontal_flip:
        width = output_shape[1]
        new_camera.horizontal_flip(image_width=width)
        # Continuous coordinates mirror as u -> W - 1 - u (pixel centres at integers).
        new_bbox = np.array([width - 1 - new_bbox[0] - new_bbox[2], *new_bbox[1:]], np.float32)
        if new_example.mask is not None:
            new_example.mask = masks.encode(masks.decode(new_example.mask)[:, ::-1])
        if not is_3d:
            new_example.coords = new_example.coords.copy()
            new_example.coords[:, 0] = width - 1 - new_example.coords[:, 0]
        if densepose is not None:
            flipped = new_example.densepose.imcoords.copy()
            flipped[:, 0] = width - 1 - flipped[:, 0]
            new_example.densepose = new_example.densepose._replace(imcoords=flipped)
    new_example.camera = new_camera if (is_3d or example.camera is not None) else None
    new_example.bbox = new_bbox
    return new_example


# Workers that make crops must not each spawn a full set of OpenCV and BLAS threads: the per-crop matrix
# products are small, and BLAS threads competing with the other workers made them 6x slower (measured).
def limit_threads_for_worker():
    from threadpoolctl import threadpool_limits
    cv2.setNumThreads(1)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    threadpool_limits(1)
