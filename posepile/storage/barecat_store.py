"""Barecat archives of a dataset: crops (JPEG bytes as stored) and compact per-example annotations.

`posepile export` writes the ORIGINAL PosePile layout by default, so that training code written for the
original readers (`Pose3DDatasetBarecat` / `Pose2DDatasetBarecat` with barecat 0.2's API, as MeTRAbs and NLF
use them) reads the export unchanged:

  OUT/annotations.barecat-sqlite-index   SQLite index as a sidecar file (barecat 0.2 layout; barecat >= 0.3
  OUT/annotations.barecat-shard-NNNNN    opens it too: it looks for `X-sqlite-index` when `X` is absent)
  OUT/images.barecat-sqlite-index, OUT/images.barecat-shard-NNNNN   key = image_path, value = JPEG bytes

  values are msgpack-numpy (an array is a map {b'nd': True, b'type': dtype str, b'kind': b'', b'shape',
  b'data': raw bytes}; a numpy scalar {b'nd': False, b'type', b'data'})
  key 'metadata.msgpack': {joint_names, joint_edges, train_bone_lengths, trainval_bone_lengths (float32 mm),
                           posepile: {layout_version, kind, counts {train, val, test}, has_images, ...}}
  key '<phase>/<image_path>_<NN>.msgpack', phase in train/val/test, NN = 2-digit number of the person among
       the examples sharing image_path (in dataset order); readers recover image_path from the key
  key 'posepile_keys.msgpack': {phase: NUL-terminated keys in dataset order} (our readers keep the order;
       the original reader groups by the first path component and ignores this key and our extra fields)
  example: impath str; bbox int16 [x, y, w, h] px (rounded, as the original; float32 on load);
           joints3d (3D) / joints2d (2D): {rows: [K, C] valid coordinates (absolute mm / px; float16 when
             that loses < 1 mm / < 0.1 px, else float32), i_rows: uint16 [K] indices of the valid joints,
             empty = rows is dense (all valid, or all NaN)};
           cam: {rotvec_w2c [3], loc [3] mm, intr [2, 3] (first two rows of K), up [3], distcoef (OpenCV
             order, only if non-zero)}; mask: {size [H, W], zcounts: zlib-compressed COCO RLE counts};
           joints3d absent for examples without joints (parametric-only; metadata joint lists then empty);
           parameters (only with 'pose', which the original reader requires): {type, gender, pose (flat
             axis-angle, hands expanded), shape (betas, any length), trans (m), optional kid_factor / scale /
             expression}, in the WORLD frame of the example's camera (NLF rototranslates them by cam R and
             loc / 1000); kid_factor == 0, scale == 1 and all-zero expression are dropped (readers default them);
           2D: joints2d {rows, i_rows}, optional cam, mask and densepose {imcoords, i_faces, barycoords};
           extras the original ignores: activity, scene, univ ({rows, i_rows}), extra (2D),
           posepile_parameters (parameters without 'pose'), cam.lens (lens model name if not OpenCV's;
             'fisheye' (k1..k4) and 'fisheye624' (k0..k5, p0, p1, s0..s3) cameras keep their coefficients in
             distcoef, even all-zero ones: the original readers would misread an uncropped one as OpenCV's),
           cam.R (the exact rotation, only when it is not orthonormal to 1e-9)

The older posepile layout (`export_dataset(..., schema='posepile')`, readable as before) keeps the index inside
`annotations.barecat` (barecat >= 0.3 only) and numbers the examples:
  key = '<train|valid|test>/<index:09d>.msgpack'; msgpack ExtType arrays; joints {offset, rows, i_rows, n};
  cam {R, loc, K, dist, dist_model, up}; mask {size, counts}; metadata {schema_version 1, kind, counts, ...}.
Our readers, `verify`, `show`, the merge and the PyTorch adapter read both layouts, and archives written by the
original tools (`zcounts`/`counts`/`ucounts` masks, rows with no i_rows entries, no key table: examples
in key order, uint16 boxes of the WACV-era writer) and by earlier posepile versions of this layout (float32
boxes, unflattened pose, neutral kid_factor/scale/expression kept): those read unchanged.

Both writers are resumable: the metadata entry is written last and marks a finished export; entries already
present with the same content are kept. Every entry carries a CRC32C checksum (Barecat's), checked by `verify`.
"""
import argparse
import logging
import os
import sys
import zlib
from pathlib import Path

import msgpack
import numpy as np

from posepile.datasets2d import Pose2DDataset, Pose2DExample
from posepile.datasets3d import SPLIT_NAMES, TEST, TRAIN, VALID, Pose3DDataset, Pose3DExample
from posepile.joint_info import JointInfo
from posepile.util.camera import Camera

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1  # the older posepile layout
LAYOUT_VERSION = 1  # our extras inside the original layout
METADATA_KEY = 'metadata.msgpack'
KEY_TABLE_KEY = 'posepile_keys.msgpack'
SPLIT_KEYS = {TRAIN: 'train', VALID: 'valid', TEST: 'test'}  # older posepile layout
PHASES = {TRAIN: 'train', VALID: 'val', TEST: 'test'}  # original layout
SCHEMAS = ('original', 'posepile')


class BarecatStoreError(RuntimeError):
    pass


# ------------------------------------------------------------------------------------------------------
# msgpack-numpy values (the original layout's codec)
def _np_default(obj):
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in 'OV':
            raise TypeError(f'Cannot serialise an array of dtype {obj.dtype}')
        return {b'nd': True, b'type': obj.dtype.str, b'kind': b'', b'shape': list(obj.shape),
                b'data': np.ascontiguousarray(obj).tobytes()}
    if isinstance(obj, (np.bool_, np.number)):
        return {b'nd': False, b'type': obj.dtype.str, b'data': obj.tobytes()}
    raise TypeError(f'Cannot serialise {type(obj).__name__}')


def _np_object_hook(d):
    if b'nd' in d:
        dtype = np.dtype(d[b'type'])
        if d[b'nd'] is True:
            if d.get(b'kind', b'') in (b'V', b'O'):
                raise ValueError('structured or object arrays are not supported')
            return np.frombuffer(d[b'data'], dtype).reshape(d[b'shape']).copy()
        return np.frombuffer(d[b'data'], dtype)[0]
    if b'complex' in d:
        data = d[b'data']
        return complex(data.decode() if isinstance(data, bytes) else data)
    return d


def pack_np(obj):
    """msgpack-numpy encoding (what barecat's `.msgpack` codec and the original readers decode)."""
    return msgpack.packb(obj, default=_np_default, use_bin_type=True)


def unpack(data):
    """Decode either codec: msgpack-numpy maps and our older msgpack extension type."""
    return msgpack.unpackb(data, ext_hook=_ext_hook, object_hook=_np_object_hook, raw=False,
                           strict_map_key=False)


def _check_str_keys(obj, where):
    """msgpack-numpy readers (strict_map_key) accept only str/bytes map keys."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, bytes)):
                raise BarecatStoreError(f'{where}: map key {k!r} is not a string; the original layout needs '
                                        f'string keys')
            _check_str_keys(v, where)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _check_str_keys(v, where)


# ------------------------------------------------------------------------------------------------------
# Original layout: example <-> dict
def encode_rows(coords, max_error):
    """{rows, i_rows}: valid rows (absolute), float16 only when that loses < max_error; i_rows empty = dense."""
    coords = np.asarray(coords, np.float32)
    valid = np.all(np.isfinite(coords), axis=-1)
    no_rows = np.zeros(0, np.uint16)
    if not np.any(valid):
        # All invalid: dense NaN rows (an empty `rows` would decode to an empty array in the original reader).
        return {'rows': np.full(coords.shape, np.nan, np.float16), 'i_rows': no_rows}
    rows = np.ascontiguousarray(coords[valid])
    half = rows.astype(np.float16)
    if np.all(np.isfinite(half)) and np.max(np.abs(half.astype(np.float32) - rows)) < max_error:
        rows = half
    i_rows = no_rows if np.all(valid) else np.flatnonzero(valid).astype(np.uint16)
    return {'rows': rows, 'i_rows': i_rows}


def decode_rows(encoded, n_joints, n_dims):
    rows = np.asarray(encoded['rows'])
    i_rows = np.asarray(encoded.get('i_rows', ()), np.int64).reshape(-1)
    result = np.full((n_joints, n_dims), np.nan, np.float32)
    if len(i_rows) > 0:
        result[i_rows] = rows.reshape(len(i_rows), n_dims)
        return result
    if rows.size == 0:
        return result  # the original writer's encoding of "no valid joint"
    rows = rows.reshape(-1, n_dims)
    if len(rows) != n_joints:
        raise ValueError(f'{len(rows)} dense rows for {n_joints} joints')
    return rows.astype(np.float32)


# Lens models whose coefficients the original layout carries in `distcoef`, with the model name in `cam.lens`
# (which the original readers ignore: they would take the coefficients for OpenCV's, so only our readers
# read such an uncropped camera right; crops have no distortion left and read right everywhere).
LENS_MODELS_IN_DISTCOEF = ('fisheye', 'fisheye624')


def encode_camera_original(camera, where):
    model = camera.distortion_model
    # An uncropped fisheye / h36m-lens camera is refused: the original readers would read its coefficients as
    # OpenCV's (silently wrong projections). Crops are undistorted pinholes and export fine.
    if camera.distortion_model != 'opencv' and camera.distortion_coeffs is not None:
        raise BarecatStoreError(
            f'{where}: the camera uses the {camera.distortion_model} lens model, which the original PosePile '
            f'camera library cannot express, and the image is not undistorted; build the cropped (undistorted) '
            f'dataset first, or export with --schema posepile')
    import cv2
    R = np.asarray(camera.R, np.float64)
    result = {'rotvec_w2c': cv2.Rodrigues(R)[0][:, 0].astype(np.float64),
              'loc': np.asarray(camera.t, np.float64),
              'intr': np.ascontiguousarray(camera.intrinsic_matrix[:2], np.float64),
              'up': np.asarray(camera.world_up, np.float64)}
    if camera.distortion_coeffs is not None and (
            np.any(camera.distortion_coeffs != 0) or model in LENS_MODELS_IN_DISTCOEF):
        # (an all-zero fisheye lens is the equidistant projection, not a pinhole: kept)
        result['distcoef'] = np.asarray(camera.distortion_coeffs, np.float64)
    if camera.distortion_model != 'opencv':
        result['lens'] = camera.distortion_model
    if np.max(np.abs(R @ R.T - np.eye(3))) > 1e-9:
        result['R'] = R
    return result


def decode_camera_original(d):
    import cv2
    if 'R' in d:
        R = np.asarray(d['R'], np.float64)
    else:
        R = cv2.Rodrigues(np.asarray(d['rotvec_w2c'], np.float64).reshape(3, 1))[0]
    K = np.concatenate([np.asarray(d['intr'], np.float64).reshape(2, 3), [[0.0, 0.0, 1.0]]])
    model = d.get('lens', 'opencv')
    coeffs = d.get('distcoef')
    if coeffs is not None:
        coeffs = np.asarray(coeffs, np.float64).reshape(-1)
        if model == 'opencv' and len(coeffs) not in (4, 5, 8):
            if len(coeffs) < 8:
                coeffs = np.concatenate([coeffs, np.zeros(8 - len(coeffs))])
            elif np.all(coeffs[8:] == 0):
                coeffs = coeffs[:8]
            else:
                raise ValueError(f'{len(coeffs)} distortion coefficients (thin-prism/tilt terms) are not supported')
    up = np.asarray(d['up'], np.float64) if 'up' in d else (0, 0, 1)
    return Camera(np.asarray(d['loc'], np.float64), R, K, coeffs, world_up=up, distortion_model=model)


def encode_mask_original(mask):
    counts = mask['counts']
    size = [int(mask['size'][0]), int(mask['size'][1])]
    if isinstance(counts, list):
        import pycocotools.mask as cocomask
        counts = cocomask.frPyObjects({'size': size, 'counts': counts}, *size)['counts']
    if isinstance(counts, str):
        counts = counts.encode('ascii')
    return {'size': size, 'zcounts': zlib.compress(bytes(counts), -1)}


def decode_mask(mask):
    """Any stored RLE form ({zcounts}, {counts: bytes|str}, {ucounts}) -> {size, counts: str}."""
    size = [int(mask['size'][0]), int(mask['size'][1])]
    if 'zcounts' in mask:
        counts = zlib.decompress(mask['zcounts'])
    elif 'ucounts' in mask:
        import pycocotools.mask as cocomask
        runs = [int(x) for x in np.asarray(mask['ucounts']).reshape(-1)]
        counts = cocomask.frPyObjects({'size': size, 'counts': runs}, *size)['counts']
    else:
        counts = mask['counts']
        if isinstance(counts, np.ndarray):
            counts = counts.tolist()
    if isinstance(counts, bytes):
        counts = counts.decode('ascii')
    return {'size': size, 'counts': counts}


def encode_example_original(example, where):
    impath = str(example.image_path)
    if Path(impath).is_absolute() or '\0' in impath or os.path.normpath(impath) != impath:
        raise BarecatStoreError(f'{where}: image path {impath!r} must be a normalised path relative to DATA_ROOT '
                                f'in the original layout (readers recover it from the key)')
    result = {'impath': impath, 'bbox': encode_bbox(example.bbox, where)}
    if isinstance(example, Pose3DExample):
        if example.camera is None:
            raise BarecatStoreError(f'{where}: a 3D example needs a camera in the original layout')
        if example.world_coords is not None:
            result['joints3d'] = encode_rows(example.world_coords, max_error=1.0)
        if example.univ_coords is not None:
            result['univ'] = encode_rows(example.univ_coords, max_error=1.0)
        result['activity'] = str(example.activity_name)
        result['scene'] = str(example.scene_name)
        params = example.parameters
        if params is not None:
            _check_str_keys(params, where)
            if 'pose' in params:
                result['parameters'] = encode_parameters(params)
            else:
                result['posepile_parameters'] = params
    else:
        result['joints2d'] = encode_rows(example.coords, max_error=0.1)
        result['scene'] = str(example.scene_name)
        extra = example.extra
        if getattr(example, 'densepose', None) is not None:
            result['densepose'] = encode_densepose(example.densepose, where)
        if extra is not None:
            _check_str_keys(extra, where)
            if isinstance(extra, dict) and 'densepose' in extra:  # older examples kept it in `extra`
                if 'densepose' not in result:
                    result['densepose'] = encode_densepose(extra['densepose'], where)
                extra = {k: v for k, v in extra.items() if k != 'densepose'} or None
            if extra is not None:
                result['extra'] = extra
    if example.camera is not None:
        result['cam'] = encode_camera_original(example.camera, where)
    if example.mask is not None:
        result['mask'] = encode_mask_original(example.mask)
    return result


def encode_bbox(bbox, where):
    """The original's box: [x, y, w, h] px rounded to int16 (its readers turn it into float32)."""
    bbox = np.asarray(bbox, np.float64).reshape(-1)
    rounded = np.round(bbox)
    if not np.all(np.isfinite(rounded)) or np.any(np.abs(rounded) > np.iinfo(np.int16).max):
        raise BarecatStoreError(f'{where}: box {bbox.tolist()} does not fit int16 pixels')
    return rounded.astype(np.int16)


def encode_parameters(params):
    """Body-model parameters as the original's current writer stores them (nlf-era-facts §3): the dict as
    stored (world frame of the example's camera, trans in metres; never converted here), with `pose`, `shape`,
    `trans` and `expression` as flat arrays (pose: axis-angle, hands expanded), and the neutral optional entries dropped: kid_factor == 0, scale == 1, all-zero
    expression (readers take the missing ones as 0 / 1 / zeros)."""
    result = dict(params)
    for key in ('pose', 'shape', 'trans', 'expression'):
        if key in result and result[key] is not None:
            result[key] = np.asarray(result[key]).reshape(-1)
    if 'kid_factor' in result and np.all(np.asarray(result['kid_factor']) == 0):
        del result['kid_factor']
    if 'scale' in result and np.all(np.asarray(result['scale']) == 1):
        del result['scale']
    if 'expression' in result and (result['expression'] is None or not np.any(result['expression'])):
        del result['expression']
    return result


def encode_densepose(densepose, where='densepose'):
    """The original's densepose entry: {imcoords (N, 2) px, i_faces (N, 3) uint16 SMPL vertex ids, barycoords
    (N, 3)}, imcoords float16 when that loses < 1 px and barycoords when it loses < 0.01 (else float32).
    `densepose`: a DensePose, a (imcoords, i_faces, barycoords) triple or a dict with those keys."""
    from posepile.datasets2d import DensePose
    try:
        densepose = DensePose.make(densepose)
    except (KeyError, TypeError, ValueError) as e:
        raise BarecatStoreError(f'{where}: bad densepose value ({type(e).__name__}: {e})') from e
    result = {}
    for key, max_error in (('imcoords', 1.0), ('barycoords', 0.01)):
        value = getattr(densepose, key)
        half = value.astype(np.float16)
        ok = np.all(np.isfinite(half)) and (value.size == 0 or np.max(np.abs(half - value)) < max_error)
        result[key] = half if ok else value
    faces = densepose.i_faces
    if faces.size and (faces.min() < 0 or faces.max() > np.iinfo(np.uint16).max):
        raise BarecatStoreError(f'{where}: densepose vertex ids must be in [0, 65535] (uint16), got '
                                f'[{faces.min()}, {faces.max()}]')
    result['i_faces'] = faces.astype(np.uint16)
    return result


def decode_densepose(d):
    """A stored densepose entry -> DensePose (float32 coordinates, int32 vertex ids)."""
    from posepile.datasets2d import DensePose
    return DensePose.make(d)


def decode_parameters(params):
    """Stored parameters with `pose` flattened (as the original reader does); missing optional entries stay
    missing (kid_factor 0, scale 1, zero expression)."""
    if params is None or 'pose' not in params:
        return params
    return {**params, 'pose': np.asarray(params['pose']).reshape(-1)}


def decode_example_original(d, is_3d, n_joints):
    camera = decode_camera_original(d['cam']) if 'cam' in d else None
    mask = decode_mask(d['mask']) if 'mask' in d else None
    bbox = np.asarray(d['bbox'])
    if bbox.dtype == np.uint16:
        bbox = bbox.view(np.int16)  # the WACV-era writer's uint16 boxes: negative coordinates wrapped around
    bbox = bbox.astype(np.float32)
    if is_3d:
        coords = decode_rows(d['joints3d'], n_joints, 3) if 'joints3d' in d and n_joints > 0 else None
        univ = decode_rows(d['univ'], n_joints, 3) if 'univ' in d else None
        params = decode_parameters(d.get('parameters', d.get('posepile_parameters')))
        return Pose3DExample(d['impath'], coords, bbox, camera, activity_name=d.get('activity', 'unknown'),
                             scene_name=d.get('scene', 'unknown'), mask=mask, univ_coords=univ,
                             parameters=params)
    densepose = decode_densepose(d['densepose']) if 'densepose' in d else None
    return Pose2DExample(d['impath'], decode_rows(d['joints2d'], n_joints, 2), bbox, mask=mask, camera=camera,
                         scene_name=d.get('scene', 'unknown'), extra=d.get('extra'), densepose=densepose)


def image_path_from_key(key):
    """What the original reader derives: drop the phase and everything from the last '_'."""
    return '_'.join(key.partition('/')[2].split('_')[:-1])


class KeyTable:
    """Keys of one phase as one NUL-terminated UTF-8 blob: compact for millions of examples."""

    def __init__(self, blob):
        self.blob = bytes(blob)
        ends = np.flatnonzero(np.frombuffer(self.blob, np.uint8) == 0)
        self.ends = ends.astype(np.uint32) if len(self.blob) < 2 ** 32 else ends

    @staticmethod
    def from_keys(keys):
        return KeyTable(b''.join(k.encode('utf-8') + b'\0' for k in keys))

    def __len__(self):
        return len(self.ends)

    def __getitem__(self, i):
        start = int(self.ends[i - 1]) + 1 if i > 0 else 0
        return self.blob[start:int(self.ends[i])].decode('utf-8')

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def _list_phase_keys(archive, phase):
    """Keys under '<phase>/' in sorted order (the order the original reader sees), as a KeyTable."""
    buf = bytearray()
    for row in archive.index.fetch_iter('SELECT path FROM files WHERE path >= ? AND path < ? ORDER BY path',
                                        (phase + '/', phase + '0')):
        buf += row['path'].encode('utf-8') + b'\0'
    return KeyTable(buf)


# ------------------------------------------------------------------------------------------------------
# Older posepile layout: msgpack with numpy arrays as an extension type
_ND_EXT = 1


def _default(obj):
    if isinstance(obj, np.ndarray):
        header = msgpack.packb([obj.dtype.str, list(obj.shape)])
        return msgpack.ExtType(_ND_EXT, header + np.ascontiguousarray(obj).tobytes())
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f'Cannot serialise {type(obj).__name__}')


def _ext_hook(code, data):
    if code != _ND_EXT:
        return msgpack.ExtType(code, data)
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    dtype, shape = next(unpacker)
    offset = unpacker.tell()
    return np.frombuffer(data, dtype=np.dtype(dtype), offset=offset).reshape(shape).copy()


def pack(obj):
    return msgpack.packb(obj, default=_default, use_bin_type=True)



# ------------------------------------------------------------------------------------------------------
# Older posepile layout: example <-> dict
def encode_coords(coords, max_error):
    """Sparse, offset-compressed coordinates (NaN = invalid joint)."""
    coords = np.asarray(coords, np.float32)
    valid = np.all(np.isfinite(coords), axis=-1)
    rows = coords[valid]
    result = {}
    if not np.all(valid):
        result['i_rows'] = np.nonzero(valid)[0].astype(np.uint16)
    if len(rows) > 0:
        offset = np.float32(0.5) * (rows.min(axis=0) + rows.max(axis=0))
        deltas = rows - offset
        as_half = deltas.astype(np.float16)
        if np.all(np.isfinite(as_half)) and np.max(np.abs(as_half.astype(np.float32) - deltas)) < max_error:
            result['offset'] = offset.astype(np.float32)
            result['rows'] = as_half
        else:
            result['rows'] = rows
    else:
        result['rows'] = rows
    result['n'] = int(coords.shape[0])
    return result


def decode_coords(encoded, n_dims):
    n = encoded['n']
    rows = encoded['rows'].astype(np.float32)
    if 'offset' in encoded:
        rows = rows + encoded['offset']
    if 'i_rows' not in encoded:
        return rows.reshape(n, n_dims)
    result = np.full((n, n_dims), np.nan, np.float32)
    result[encoded['i_rows'].astype(np.int64)] = rows
    return result


def encode_camera(camera):
    result = {'R': camera.R.astype(np.float32), 'loc': camera.t, 'K': camera.intrinsic_matrix,
              'up': camera.world_up.astype(np.float32), 'dist_model': camera.distortion_model}
    if camera.distortion_coeffs is not None:
        result['dist'] = camera.distortion_coeffs
    return result


def decode_camera(d):
    R = d['R'].astype(np.float64)
    # Re-orthonormalise: float32 storage leaves ~1e-7 drift.
    u, _, vt = np.linalg.svd(R)
    return Camera(d['loc'], u @ vt, d['K'], d.get('dist'), world_up=d['up'].astype(np.float64),
                  distortion_model=d.get('dist_model', 'opencv'))


def encode_example(example, split):
    is_3d = isinstance(example, Pose3DExample)
    result = {'impath': str(example.image_path), 'bbox': np.asarray(example.bbox, np.float32),
              'split': int(split)}
    if is_3d:
        result['joints'] = encode_coords(example.world_coords, max_error=1.0)
        if example.univ_coords is not None:
            result['univ'] = encode_coords(example.univ_coords, max_error=1.0)
        result['activity'] = example.activity_name
        result['scene'] = example.scene_name
        if example.parameters is not None:
            result['parameters'] = example.parameters
    else:
        result['joints'] = encode_coords(example.coords, max_error=0.1)
        result['scene'] = example.scene_name
        if example.extra is not None:
            result['extra'] = example.extra
        if getattr(example, 'densepose', None) is not None:
            result['densepose'] = example.densepose._asdict()
    if example.camera is not None:
        result['cam'] = encode_camera(example.camera)
    if example.mask is not None:
        result['mask'] = {'size': list(example.mask['size']), 'counts': _counts_str(example.mask['counts'])}
    return result


def _counts_str(counts):
    return counts.decode('ascii') if isinstance(counts, bytes) else counts


def decode_example(d, is_3d):
    camera = decode_camera(d['cam']) if 'cam' in d else None
    if is_3d:
        univ = decode_coords(d['univ'], 3) if 'univ' in d else None
        return Pose3DExample(
            d['impath'], decode_coords(d['joints'], 3), d['bbox'], camera,
            activity_name=d.get('activity', 'unknown'), scene_name=d.get('scene', 'unknown'),
            mask=d.get('mask'), univ_coords=univ, parameters=d.get('parameters'))
    return Pose2DExample(d['impath'], decode_coords(d['joints'], 2), d['bbox'], mask=d.get('mask'),
                         camera=camera, scene_name=d.get('scene', 'unknown'), extra=d.get('extra'),
                         densepose=decode_densepose(d['densepose']) if 'densepose' in d else None)


# ------------------------------------------------------------------------------------------------------
# Export
def archive_exists(path):
    """An archive in either layout: index inside `path`, or the sidecar `path-sqlite-index`."""
    path = Path(path)
    return path.is_file() or Path(f'{path}-sqlite-index').exists()


def _open_writer(path, shard_size_limit, sidecar=False):
    import barecat
    path = Path(path)
    if sidecar:
        if path.is_file():
            raise BarecatStoreError(
                f'{path} holds an archive in the single-file layout (an older posepile export); remove '
                f'{path.name}* or export to another folder')
        index_path = Path(f'{path}-sqlite-index')
        if not index_path.exists():
            # barecat >= 0.3 creates new archives in the single-file layout; an index created at the sidecar
            # path first is used from then on (barecat looks for `X-sqlite-index` when `X` is absent).
            with barecat.Index(str(index_path), readonly=False):
                pass
    elif Path(f'{path}-sqlite-index').exists():
        raise BarecatStoreError(
            f'{path}-sqlite-index holds an archive in the original (sidecar) layout; remove {path.name}* or '
            f'export to another folder')
    return barecat.Barecat(path, readonly=False, shard_size_limit=shard_size_limit, exist_ok=True)


def export_dataset(dataset, out_dir, image_root=None, shard_size_limit='2G', include_images=True,
                   schema='original'):
    """Write `dataset` (in-memory Pose3DDataset/Pose2DDataset) into Barecat archives under `out_dir`.

    schema='original' (default): the original PosePile layout (see the module docstring); 'posepile': the older
    posepile layout. Resumable: entries already present are kept (in the original layout only when their
    content is unchanged; entries the dataset no longer has are removed); the metadata entry is written last.
    Returns the metadata dict.
    """
    if schema not in SCHEMAS:
        raise ValueError(f'Unknown schema {schema!r}; use one of {SCHEMAS}')
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sidecar = schema == 'original'
    ann = _open_writer(out_dir / 'annotations.barecat', shard_size_limit, sidecar)
    images = None
    try:
        images = _open_writer(out_dir / 'images.barecat', shard_size_limit, sidecar) if include_images else None
        for key in (METADATA_KEY, KEY_TABLE_KEY):
            if key in ann:
                # A finished export being refreshed: drop the marker first so a crash cannot leave stale metadata.
                del ann[key]
        writer = _ImageWriter(images, image_root)
        if schema == 'original':
            return _export_original(dataset, ann, writer)
        return _export_posepile(dataset, ann, writer)
    finally:
        ann.close()
        if images is not None:
            images.close()


class _ImageWriter:
    def __init__(self, archive, image_root):
        self.archive = archive
        self.image_root = Path(image_root) if image_root is not None else None

    def add(self, impath, where):
        if self.archive is None or impath in self.archive:
            return
        from posepile.paths import data_root
        root = self.image_root if self.image_root is not None else data_root()
        source = Path(impath) if Path(impath).is_absolute() else root / impath
        try:
            self.archive[impath] = source.read_bytes()
        except FileNotFoundError:
            raise BarecatStoreError(f'Image of {where} not found: {source}') from None


def _progress(dataset):
    from tqdm import tqdm
    n_total = sum(len(v) for v in dataset.examples.values())
    return tqdm(total=n_total, desc='barecat export', unit='ex', mininterval=2,
                disable=True if n_total < 1000 else None)


def _put(archive, key, value):
    """Write `value` under `key`, keeping an identical existing entry (resume) and replacing a changed one."""
    if key in archive:
        if archive[key] == value:
            return
        del archive[key]
    archive[key] = value


class _PeopleInImage:
    """NN of the next example of an image path (0, 1, ...) in bounded memory for millions of mostly unique
    paths: the hashes of the paths seen once, exact counts only for the paths seen again. (Two paths with the
    same 64-bit hash would number the second one from 01: the keys stay unique and readers take the image
    path from everything before the last '_'.)"""

    def __init__(self):
        self.seen_hashes = set()
        self.repeated = {}

    def next_number(self, impath):
        h = hash(impath)
        if h not in self.seen_hashes:
            self.seen_hashes.add(h)
            return 0
        nn = self.repeated.get(impath, 1)
        self.repeated[impath] = nn + 1
        return nn


def _export_original(dataset, ann, images):
    is_3d = isinstance(dataset, Pose3DDataset)
    progress = _progress(dataset)
    tables = {}
    counts = {}
    fresh = ann.num_files == 0  # a new export: no entry to compare with or to remove (one SQLite call per entry)
    for split, phase in PHASES.items():
        key_blob = bytearray()  # the key table as it grows (a list of millions of key strings would take ~1 GB)
        n_keys = 0
        people_in_image = _PeopleInImage()
        for index, example in enumerate(dataset.examples[split]):
            where = f'{SPLIT_NAMES[split]} example {index}'
            impath = str(example.image_path)
            nn = people_in_image.next_number(impath)
            key = f'{phase}/{impath}_{nn:02d}.msgpack'
            value = pack_np(encode_example_original(example, where))
            if fresh:
                ann[key] = value
            else:
                _put(ann, key, value)
            key_blob += key.encode('utf-8') + b'\0'
            n_keys += 1
            images.add(impath, where)
            progress.update()
        del people_in_image
        if not fresh:
            # Entries of an earlier export that this dataset no longer has would be read as examples.
            expected = set(KeyTable(key_blob))
            for stale in [k for k in _list_phase_keys(ann, phase) if k not in expected]:
                del ann[stale]
            del expected
        tables[phase] = bytes(key_blob)
        counts[phase] = n_keys
    progress.close()
    extras = {'layout_version': LAYOUT_VERSION, 'kind': '3d' if is_3d else '2d', 'counts': counts,
              'has_images': images.archive is not None}
    if getattr(dataset, 'source_counts', None) is not None:
        _check_str_keys(dataset.source_counts, 'source_counts')
        extras['source_counts'] = dataset.source_counts
    metadata = {'joint_names': list(dataset.joint_info.names),
                'joint_edges': [[int(i), int(j)] for i, j in dataset.joint_info.stick_figure_edges],
                'posepile': extras}
    if is_3d:
        for attr, key in (('train_bones', 'train_bone_lengths'), ('trainval_bones', 'trainval_bone_lengths')):
            value = getattr(dataset, attr, None)
            if value is not None:
                metadata[key] = np.asarray(value, np.float32)
            elif dataset.joint_info.n_joints == 0:
                metadata[key] = []  # parametric-only archives: empty lists, as the original writes them
    ann[KEY_TABLE_KEY] = pack_np(tables)
    ann[METADATA_KEY] = pack_np(metadata)
    return metadata


def _export_posepile(dataset, ann, images):
    is_3d = isinstance(dataset, Pose3DDataset)
    progress = _progress(dataset)
    counts = {}
    for split in (TRAIN, VALID, TEST):
        examples = dataset.examples[split]
        counts[SPLIT_KEYS[split]] = len(examples)
        for index, example in enumerate(examples):
            key = f'{SPLIT_KEYS[split]}/{index:09d}.msgpack'
            if key not in ann:
                ann[key] = pack(encode_example(example, split))
            images.add(str(example.image_path), f'{split_name(split)} example {index}')
            progress.update()
    progress.close()
    metadata = {
        'schema_version': SCHEMA_VERSION,
        'kind': '3d' if is_3d else '2d',
        'joint_names': list(dataset.joint_info.names),
        'joint_edges': [list(e) for e in dataset.joint_info.stick_figure_edges],
        'counts': counts,
        'has_images': images.archive is not None,
    }
    if getattr(dataset, 'source_counts', None) is not None:
        metadata['source_counts'] = dataset.source_counts
    if is_3d:
        for attr in ('train_bones', 'trainval_bones'):
            value = getattr(dataset, attr, None)
            if value is not None:
                metadata[attr] = np.asarray(value, np.float32)
    ann[METADATA_KEY] = pack(metadata)
    return metadata


def split_name(split):
    return SPLIT_NAMES[split]


# ------------------------------------------------------------------------------------------------------
# Reading
_handles = {}


def _reader(path):
    """A read-only Barecat handle owned by this process (reopened after fork); either layout."""
    key = (str(path), os.getpid())
    handle = _handles.get(key)
    if handle is None:
        if not archive_exists(path):
            raise BarecatStoreError(f'Barecat archive not found: {path}')
        try:
            handle = _open_readonly(path)
        except Exception as e:
            raise BarecatStoreError(f'Cannot open Barecat archive {path}: {e}') from e
        _handles[key] = handle
    return handle


def _open_readonly(path):
    import warnings
    import barecat
    with warnings.catch_warnings():
        # barecat >= 0.3 warns about index schema 0.2 (what barecat 0.2 writes) on every open; that concerns
        # directory statistics after moves or deletions, never reading.
        warnings.filterwarnings('ignore', message='Schema 0.2 has a trigger bug')
        archive = barecat.Barecat(path, readonly=True)
    # SQLite's own page cache (bounded) instead of barecat's 30 GB memory map of the index: random reads over a
    # multi-GB index would otherwise bring all of it into every reader process's resident set.
    archive.index.cursor.execute('PRAGMA mmap_size = 0')
    return archive


def is_legacy_metadata(metadata):
    return metadata.get('schema_version') is not None and 'kind' in metadata and 'posepile' not in metadata


def _infer_kind(archive, tables):
    for table in tables.values():
        if len(table):
            return '2d' if 'joints2d' in unpack(archive[table[0]]) else '3d'
    return '3d'


class BarecatExampleList:
    """List-like lazy view of one split: len() and [i] decode example i on access."""

    def __init__(self, store, split):
        self.store = store
        self.split = split
        self.length = store.counts[split]

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.length))]
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(index)
        return self.store.get_example(self.split, index)

    def __iter__(self):
        for i in range(self.length):
            yield self[i]


class BarecatDataset:
    """A Barecat export (either layout, or an archive written by the original tools), opened lazily, with the
    interface of the in-memory dataset (it is a Pose3DDataset or a Pose2DDataset, so merging accepts it).

    Safe with multiple processes: each process opens its own handles on first access.
    `examples[split][i].image` holds the decoded RGB crop (from the images archive, else the file under
    DATA_ROOT, as the original reader does).
    """

    def __init__(self, out_dir, load_images=True):
        self.path = Path(out_dir)
        self.annotations_path = self.path / 'annotations.barecat'
        self.images_path = self.path / 'images.barecat'
        archive = _reader(self.annotations_path)
        try:
            raw = archive[METADATA_KEY]
        except KeyError:
            raise BarecatStoreError(
                f'{self.annotations_path} has no {METADATA_KEY}: the export did not finish; rerun it') from None
        self.metadata = unpack(raw)
        self.legacy = is_legacy_metadata(self.metadata)
        joint_names = list(self.metadata['joint_names'])
        edges = [tuple(int(i) for i in e) for e in self.metadata['joint_edges']]
        self.joint_info = JointInfo(joint_names, edges)
        self.n_joints = len(joint_names)
        if self.legacy:
            if self.metadata['schema_version'] != SCHEMA_VERSION:
                raise BarecatStoreError(
                    f'{self.annotations_path}: schema version {self.metadata["schema_version"]}, '
                    f'expected {SCHEMA_VERSION}')
            self.kind = self.metadata['kind']
            self.counts = {s: self.metadata['counts'][SPLIT_KEYS[s]] for s in SPLIT_KEYS}
            has_images = self.metadata.get('has_images', True)
            self.train_bones = self.metadata.get('train_bones')
            self.trainval_bones = self.metadata.get('trainval_bones')
        else:
            extras = self.metadata.get('posepile') or {}
            self.tables = load_key_tables(archive)
            self.kind = extras.get('kind') or _infer_kind(archive, self.tables)
            self.counts = {s: len(self.tables[PHASES[s]]) for s in PHASES}
            has_images = extras.get('has_images', True)
            self.train_bones = self.metadata.get('train_bone_lengths')
            self.trainval_bones = self.metadata.get('trainval_bone_lengths')
        self.is_3d = self.kind == '3d'
        self.load_images = load_images and has_images
        self.examples = {split: BarecatExampleList(self, split) for split in (TRAIN, VALID, TEST)}
        if type(self) is BarecatDataset:
            self.__class__ = BarecatDataset3D if self.is_3d else BarecatDataset2D

    def __getstate__(self):
        return {'out_dir': self.path, 'load_images': self.load_images}

    def __setstate__(self, state):
        self.__init__(state['out_dir'], state['load_images'])

    def key(self, split, index):
        if self.legacy:
            return f'{SPLIT_KEYS[split]}/{index:09d}.msgpack'
        return self.tables[PHASES[split]][index]

    def get_example(self, split, index):
        key = self.key(split, index)
        try:
            raw = _reader(self.annotations_path)[key]
        except KeyError:
            raise BarecatStoreError(f'{self.annotations_path}: entry {key} is missing') from None
        try:
            example = self.decode(unpack(raw))
        except Exception as e:
            raise BarecatStoreError(f'{self.annotations_path}: entry {key} does not decode: {e}') from e
        if self.load_images:
            example.image = self.read_image(example.image_path)
        return example

    def decode(self, d):
        if self.legacy:
            return decode_example(d, self.is_3d)
        return decode_example_original(d, self.is_3d, self.n_joints)

    def read_image_bytes(self, image_path):
        image_path = str(image_path)
        if archive_exists(self.images_path):
            try:
                return _reader(self.images_path)[image_path]
            except KeyError:
                pass
        # As the original reader: an image missing from the archive is read from DATA_ROOT.
        try:
            from posepile.paths import abs_image_path
            return Path(abs_image_path(image_path)).read_bytes()
        except Exception:
            raise BarecatStoreError(
                f'{self.images_path}: image entry {image_path} is missing (and not found under DATA_ROOT)') from None

    def read_image(self, image_path):
        from posepile.util import improc
        data = self.read_image_bytes(image_path)
        try:
            return improc.decode_jpeg(data)
        except Exception as e:
            raise BarecatStoreError(f'{self.images_path}: image entry {image_path} does not decode: {e}') from e

    def iter_examples(self):
        for split in (TRAIN, VALID, TEST):
            yield from self.examples[split]

    def __repr__(self):
        counts = ', '.join(f'{SPLIT_NAMES[s]}={n}' for s, n in self.counts.items())
        return f'BarecatDataset({self.path}, {self.joint_info.n_joints} joints, {counts})'


class BarecatDataset3D(BarecatDataset, Pose3DDataset):
    pass


class BarecatDataset2D(BarecatDataset, Pose2DDataset):
    pass


def load_key_tables(archive):
    """{phase: KeyTable}: our key table (dataset order) if present, else the archive's keys in sorted order."""
    if KEY_TABLE_KEY in archive:
        stored = unpack(archive[KEY_TABLE_KEY])
        return {phase: KeyTable(stored.get(phase, b'')) for phase in PHASES.values()}
    return {phase: _list_phase_keys(archive, phase) for phase in PHASES.values()}


def open_dataset(out_dir, load_images=True):
    return BarecatDataset(out_dir, load_images=load_images)


# ------------------------------------------------------------------------------------------------------
# Verification
def verify(out_dir, decode_images=True):
    """Check every entry's checksum, that every annotation and image decodes, and the counts (either layout).

    Returns a list of problems (empty when all is well); each names the archive/shard and the entry.
    """
    out_dir = Path(out_dir)
    problems = []
    archives = {}
    for name in ('annotations.barecat', 'images.barecat'):
        path = out_dir / name
        if not archive_exists(path):
            if name == 'annotations.barecat':
                return [f'{path}: missing']
            continue
        try:
            archives[name] = _open_readonly(path)
        except Exception as e:
            problems.append(f'{path}: cannot open ({e})')
    if 'annotations.barecat' not in archives:
        return problems
    try:
        for name, archive in archives.items():
            problems += _check_checksums(out_dir / name, archive)
        problems += _check_contents(out_dir, archives, problems, decode_images)
    finally:
        for archive in archives.values():
            archive.close()
    return problems


def _check_checksums(path, archive):
    from tqdm import tqdm
    problems = []
    shard_paths = sorted(path.parent.glob(f'{path.name}-shard-*'))
    shard_sizes = {int(p.name.rsplit('-', 1)[1]): p.stat().st_size for p in shard_paths}
    for info in tqdm(archive.index.iter_all_fileinfos(), total=archive.num_files, desc=f'verify {path.name}',
                     disable=archive.num_files < 1000):  # streamed: millions of entries
        shard_file = f'{path.name}-shard-{info.shard:05d}'
        if info.shard not in shard_sizes:
            problems.append(f'{shard_file}: missing shard (needed by entry {info.path})')
            continue
        if info.offset + info.size > shard_sizes[info.shard]:
            problems.append(f'{shard_file}: truncated; entry {info.path} extends past its end')
            continue
        try:
            ok = archive.check_crc32c(info)
        except Exception as e:
            problems.append(f'{shard_file}: entry {info.path} unreadable ({e})')
            continue
        if not ok:
            problems.append(f'{shard_file}: entry {info.path} fails its CRC32C checksum')
    return problems


def _check_contents(out_dir, archives, earlier_problems, decode_images):
    from tqdm import tqdm
    problems = []
    ann = archives['annotations.barecat']
    if METADATA_KEY not in ann:
        return [f'{out_dir / "annotations.barecat"}: no {METADATA_KEY} (unfinished export)']
    try:
        metadata = unpack(ann[METADATA_KEY])
    except Exception as e:
        return [f'{out_dir / "annotations.barecat"}: {METADATA_KEY} does not decode ({e})']
    legacy = is_legacy_metadata(metadata)
    n_joints = len(metadata['joint_names'])
    images = archives.get('images.barecat')
    bad_entries = {p.split('entry ')[1].split(' ')[0] for p in earlier_problems if 'entry ' in p}
    if legacy:
        is_3d = metadata['kind'] == '3d'
        has_images = metadata.get('has_images', True)
        plan = {}
        for split_key, count in metadata['counts'].items():
            present = set(ann.index.iterglob_paths(f'{split_key}/*.msgpack'))
            if len(present) != count:
                problems.append(f'annotations.barecat: split {split_key} has {len(present)} entries, '
                                f'metadata says {count}')
            plan[split_key] = ([f'{split_key}/{i:09d}.msgpack' for i in range(count)], present)
    else:
        extras = metadata.get('posepile') or {}
        try:
            tables = load_key_tables(ann)
        except Exception as e:
            return [f'annotations.barecat: {KEY_TABLE_KEY} does not decode ({e})']
        is_3d = (extras.get('kind') or _infer_kind(ann, tables)) == '3d'
        has_images = extras.get('has_images', True)
        plan = {}
        for phase, table in tables.items():
            count = extras.get('counts', {}).get(phase)
            if count is not None and count != len(table):
                problems.append(f'annotations.barecat: phase {phase} lists {len(table)} keys, '
                                f'metadata says {count}')
            plan[phase] = (table, None)  # presence: looked up key by key (no set of millions of keys)
    for phase, (keys, present) in plan.items():
        n_missing = 0
        for key in tqdm(keys, desc=f'decode {phase}', disable=len(keys) < 1000):
            if present is not None and key not in present:
                problems.append(f'annotations.barecat: entry {key} is missing')
                continue
            if key in bad_entries:
                continue
            try:
                raw = ann[key]
            except KeyError:
                problems.append(f'annotations.barecat: entry {key} is missing')
                n_missing += 1
                continue
            try:
                d = unpack(raw)
                example = (decode_example(d, is_3d) if legacy else decode_example_original(d, is_3d, n_joints))
            except Exception as e:
                problems.append(f'annotations.barecat: entry {key} does not decode ({e})')
                continue
            impath = str(example.image_path)
            if not legacy and image_path_from_key(key) != impath:
                problems.append(f'annotations.barecat: entry {key} names image {impath!r}, but its key gives '
                                f'{image_path_from_key(key)!r}')
            if images is not None and has_images:
                if impath not in images:
                    problems.append(f'images.barecat: image {impath} of {key} is missing')
                elif decode_images and impath not in bad_entries:
                    try:
                        _check_jpeg(images[impath])
                    except Exception as e:
                        problems.append(f'images.barecat: entry {impath} does not decode ({e})')
        if present is None:
            problems += _check_no_extra_keys(ann, phase, keys, n_missing)
    return problems


def _check_no_extra_keys(ann, phase, table, n_missing):
    """Entries under '<phase>/' that the key table does not list (counted in SQL; listed only if there are)."""
    n_present = ann.index.fetch_one('SELECT COUNT(*) FROM files WHERE path >= ? AND path < ?',
                                    (phase + '/', phase + '0'))[0]
    if n_present <= len(table) - n_missing:
        return []
    expected = set(table)
    extra_keys = [k for k in _list_phase_keys(ann, phase) if k not in expected]
    if not extra_keys:
        return []
    return [f'annotations.barecat: {len(extra_keys)} entries under {phase}/ are not in {KEY_TABLE_KEY}, '
            f'e.g. {sorted(extra_keys)[0]}']


def _check_jpeg(data):
    import cv2
    buf = np.frombuffer(data, np.uint8)
    # Reduced-size decoding still entropy-decodes the whole stream, so corruption is detected cheaply.
    image = cv2.imdecode(buf, cv2.IMREAD_REDUCED_GRAYSCALE_8)
    if image is None or not data.endswith(b'\xff\xd9'):
        raise ValueError('not a complete JPEG')


# ------------------------------------------------------------------------------------------------------
# CLI
def main_export(argv=None):
    parser = argparse.ArgumentParser(prog='posepile export', description='Export a built dataset.')
    parser.add_argument('dataset', help='registered name, or a .posepile/.pkl file')
    parser.add_argument('--to', choices=['barecat'], default='barecat')
    parser.add_argument('out', help='output folder')
    parser.add_argument('--schema', choices=SCHEMAS, default='original',
                        help="'original' (default): the original PosePile layout that its readers (MeTRAbs, NLF) "
                             "read unchanged; 'posepile': the older posepile layout")
    parser.add_argument('--shard-size', default='2G', help='Barecat shard size limit, e.g. 500M, 2G')
    parser.add_argument('--no-images', action='store_true', help='annotations only')
    args = parser.parse_args(argv)
    from posepile.datasets3d import get_dataset
    dataset = get_dataset(args.dataset)
    metadata = export_dataset(dataset, args.out, shard_size_limit=args.shard_size,
                              include_images=not args.no_images, schema=args.schema)
    counts = metadata['posepile']['counts'] if 'posepile' in metadata else metadata['counts']
    print(f'exported {counts} to {args.out} ({args.schema} layout)')


def main_verify(argv=None):
    parser = argparse.ArgumentParser(prog='posepile verify', description='Verify a Barecat export.')
    parser.add_argument('out', help='export folder (with annotations.barecat, either layout)')
    parser.add_argument('--no-decode-images', action='store_true')
    args = parser.parse_args(argv)
    problems = verify(args.out, decode_images=not args.no_decode_images)
    for problem in problems:
        print(problem)
    if problems:
        print(f'{len(problems)} problem(s) found in {args.out}')
        sys.exit(1)
    print(f'{args.out}: all entries verified')
