"""Person masks as COCO run-length encodings (RLE dicts with 'size' [H, W] and 'counts' as str)."""
import numpy as np
import pycocotools.mask as cocomask


def encode(mask):
    """Boolean/uint8 (H, W) mask -> RLE dict with str counts (JSON- and msgpack-friendly)."""
    mask = np.asfortranarray(np.asarray(mask, dtype=np.uint8))
    if mask.ndim != 2:
        raise ValueError(f'mask must be 2D, got shape {mask.shape}')
    rle = cocomask.encode(mask)
    return {'size': [int(rle['size'][0]), int(rle['size'][1])], 'counts': rle['counts'].decode('ascii')}


def _to_coco(rle):
    counts = rle['counts']
    if isinstance(counts, list):  # uncompressed RLE (COCO iscrowd annotations)
        return cocomask.frPyObjects(rle, *rle['size'])
    if isinstance(counts, str):
        counts = counts.encode('ascii')
    return {'size': list(rle['size']), 'counts': counts}


def decode(rle):
    """RLE dict -> bool (H, W)."""
    return cocomask.decode(_to_coco(rle)).astype(bool)


def area(rle):
    return int(cocomask.area(_to_coco(rle)))


def iou(rle_a, rle_b):
    return float(cocomask.iou([_to_coco(rle_a)], [_to_coco(rle_b)], [0])[0, 0])


def to_bbox(rle):
    """[x, y, w, h] of the mask (zeros for an empty mask)."""
    return np.asarray(cocomask.toBbox(_to_coco(rle)), np.float32)


def empty(imshape):
    return encode(np.zeros(imshape[:2], np.uint8))


def union(rles):
    return _from_coco(cocomask.merge([_to_coco(r) for r in rles], intersect=False))


def _from_coco(rle):
    counts = rle['counts']
    if isinstance(counts, bytes):
        counts = counts.decode('ascii')
    return {'size': [int(rle['size'][0]), int(rle['size'][1])], 'counts': counts}


def from_polygons(polygons, imshape):
    """COCO polygon list -> RLE dict for an image of shape (H, W)."""
    rles = cocomask.frPyObjects(polygons, imshape[0], imshape[1])
    return _from_coco(cocomask.merge(rles))
