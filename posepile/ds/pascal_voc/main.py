"""PASCAL VOC 2012 occluders for synthetic-occlusion augmentation (nlf-era-facts §1.4, pascal_voc).

Raw release (the official devkit layout, VOCtrainval_11-May-2012.tar extracted under $DATA_ROOT/pascal_voc):
  VOCdevkit/VOC2012/Annotations/<id>.xml          objects in order: name, truncated, difficult, bndbox
  VOCdevkit/VOC2012/SegmentationObject/<id>.png   palette PNG: pixel value k = the k-th <object> of the XML
                                                  (1-based), 0 background, 255 void/boundary
  VOCdevkit/VOC2012/SegmentationClass/<id>.png    palette PNG: pixel value = class index (VOC_CLASSES + 1)
  VOCdevkit/VOC2012/JPEGImages/<id>.jpg
Only images with a SegmentationObject PNG are used (the XML's <segmented> flag says the same).

The rule (the original's pascal_voc loader, facts §1.4): an object is an occluder when it is not a person,
not `difficult`, not `truncated`, and its instance mask has at least 500 pixels (counted at full
resolution). Its soft mask is 1 inside, 0.75 on the mask's rim (pixels removed by a 3x3 elliptic
erosion), 0 outside; image and soft mask are cropped to the mask's bounding box and downscaled x0.5.
Our check on top: the object's pixels in SegmentationClass must carry the XML's class (else the instance
numbering does not match the XML and the object is skipped and counted).

Output: $DATA_ROOT/pascal_voc/occluders/<id>_<k>.png (RGBA: RGB crop, alpha = round(255 x soft mask)) and
$DATA_ROOT/pascal_voc/occluders/index.json [{file, image_id, object_index, class, pixels}]; read them with
posepile.augment.sample_occluder.
"""
import logging
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import cv2
import numpy as np

from posepile.preproc import pipeline
from posepile.util import fileio
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'pascal_voc'
VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
               'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
               'tvmonitor')
MIN_OBJECT_PIXELS = 500
RIM_VALUE = 0.75
DOWNSCALE = 0.5
VOID = 255


class PascalVocFormatError(InputError):
    pass


def voc_root(data_root=None):
    return pipeline.raw_root(NAME, data_root) / 'VOCdevkit' / 'VOC2012'


def occluder_dir(data_root=None):
    return pipeline.raw_root(NAME, data_root) / 'occluders'


def read_objects(xml_path):
    """[{name, truncated, difficult}] in the XML's order (the instance numbering of SegmentationObject)."""
    try:
        root = ElementTree.parse(xml_path).getroot()
    except (ElementTree.ParseError, OSError) as e:
        raise PascalVocFormatError(f'{xml_path}: not a readable VOC annotation XML ({e})') from None
    objects = []
    for i, obj in enumerate(root.findall('object')):
        name = (obj.findtext('name') or '').strip()
        if name not in VOC_CLASSES:
            raise PascalVocFormatError(f'{xml_path}: object {i + 1} has unknown class {name!r}')
        objects.append({'name': name, 'truncated': _flag(obj, 'truncated', xml_path),
                        'difficult': _flag(obj, 'difficult', xml_path)})
    return objects


def _flag(obj, tag, xml_path):
    text = (obj.findtext(tag) or '0').strip()
    if text not in ('0', '1'):
        raise PascalVocFormatError(f'{xml_path}: <{tag}> must be 0 or 1, got {text!r}')
    return text == '1'


def read_label_png(path):
    """uint8 label image of a VOC segmentation PNG: the palette indices of an 8-bit palette PNG (the official
    files; OpenCV expands the palette to colours, which are mapped back through the PLTE chunk, whose VOC
    colours are distinct), or the values of an 8-bit greyscale PNG (converted releases)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PascalVocFormatError(f'{path}: missing (every segmented image needs it)') from None
    if data[:8] != b'\x89PNG\r\n\x1a\n' or len(data) < 33 or data[12:16] != b'IHDR':
        raise PascalVocFormatError(f'{path}: not a PNG file')
    bit_depth, color_type = data[24], data[25]
    if bit_depth != 8 or color_type not in (0, 3):
        raise PascalVocFormatError(f'{path}: expected an 8-bit palette or greyscale PNG, got bit depth '
                                   f'{bit_depth}, colour type {color_type}')
    flags = cv2.IMREAD_GRAYSCALE if color_type == 0 else cv2.IMREAD_COLOR
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flags | cv2.IMREAD_IGNORE_ORIENTATION)
    if decoded is None:
        raise PascalVocFormatError(f'{path}: cannot decode PNG')
    if color_type == 0:
        return decoded
    palette = _png_palette(data, path)
    codes = palette[:, 0].astype(np.int64) << 16 | palette[:, 1].astype(np.int64) << 8 | palette[:, 2]
    if len(np.unique(codes)) != len(codes):
        raise PascalVocFormatError(f'{path}: palette has repeated colours; labels are ambiguous')
    rgb = decoded[..., ::-1].astype(np.int64)
    pixel_codes = rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]
    order = np.argsort(codes)
    position = np.clip(np.searchsorted(codes[order], pixel_codes), 0, len(codes) - 1)
    if not np.all(codes[order][position] == pixel_codes):
        raise PascalVocFormatError(f'{path}: pixel colours outside the PNG palette')
    return order[position].astype(np.uint8)


def _png_palette(data, path):
    """(N, 3) uint8 RGB entries of the PLTE chunk."""
    import struct
    offset = 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack('>I4s', data[offset:offset + 8])
        if kind == b'PLTE':
            return np.frombuffer(data[offset + 8:offset + 8 + length], np.uint8).reshape(-1, 3)
        if kind in (b'IDAT', b'IEND'):
            break
        offset += 12 + length
    raise PascalVocFormatError(f'{path}: palette PNG without a PLTE chunk')


def soft_mask(mask):
    """float32: 1 inside the mask, RIM_VALUE on its rim (removed by a 3x3 elliptic erosion), 0 outside."""
    mask_u8 = mask.astype(np.uint8)
    eroded = cv2.erode(mask_u8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    result = mask_u8.astype(np.float32)
    result[(mask_u8 > 0) & (eroded == 0)] = RIM_VALUE
    return result


def occluders_of_image(root, image_id):
    """[(object_index, class, pixels, rgb crop, soft mask crop)] of the image's objects that pass the rule, plus
    the number skipped because SegmentationClass disagrees with the XML."""
    from posepile.util import improc
    objects = read_objects(root / 'Annotations' / f'{image_id}.xml')
    instance = read_label_png(root / 'SegmentationObject' / f'{image_id}.png')
    classes = read_label_png(root / 'SegmentationClass' / f'{image_id}.png')
    if instance.shape != classes.shape:
        raise PascalVocFormatError(f'{root / "SegmentationClass" / image_id}.png: size {classes.shape} differs '
                                   f'from SegmentationObject {instance.shape}')
    image = None
    result, mismatched = [], 0
    for k, obj in enumerate(objects, start=1):
        if obj['name'] == 'person' or obj['difficult'] or obj['truncated']:
            continue
        mask = instance == k
        pixels = int(mask.sum())
        if pixels < MIN_OBJECT_PIXELS:
            continue
        if not np.all(classes[mask] == VOC_CLASSES.index(obj['name']) + 1):
            mismatched += 1
            continue
        if image is None:
            image = improc.imread_rgb(root / 'JPEGImages' / f'{image_id}.jpg', strict=True)
            if image.shape[:2] != instance.shape:
                raise PascalVocFormatError(f'{root / "JPEGImages" / image_id}.jpg: size {image.shape[:2]} differs '
                                           f'from its segmentation {instance.shape}')
        ys, xs = np.nonzero(mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        crop = image[y0:y1, x0:x1]
        soft = soft_mask(np.pad(mask[y0:y1, x0:x1], 1))[1:-1, 1:-1]  # the crop's edge is rim too
        size = (max(1, round((x1 - x0) * DOWNSCALE)), max(1, round((y1 - y0) * DOWNSCALE)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        soft = cv2.resize(soft, size, interpolation=cv2.INTER_AREA)
        result.append((k, obj['name'], pixels, crop, soft))
    return result, mismatched


def occluders_stage():
    """Extract the occluders (RGBA PNGs) and their index.json."""
    root = voc_root()
    seg_dir = root / 'SegmentationObject'
    if not seg_dir.is_dir():
        raise InputError(f'{seg_dir} not found: extract VOCtrainval_11-May-2012.tar into {voc_root().parents[1]}')
    out_dir = occluder_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    image_ids = sorted(p.stem for p in seg_dir.glob('*.png'))
    index, n_mismatched = [], 0
    from tqdm import tqdm
    for image_id in tqdm(image_ids, desc='pascal_voc occluders', mininterval=2, disable=None):
        found, mismatched = occluders_of_image(root, image_id)
        n_mismatched += mismatched
        for k, name, pixels, crop, soft in found:
            file_name = f'{image_id}_{k:02d}.png'
            rgba = np.dstack([crop, np.round(soft * 255).astype(np.uint8)])
            ok, buf = cv2.imencode('.png', cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
            if not ok:
                raise RuntimeError(f'PNG encoding failed for {file_name}')
            fileio.write_bytes_atomic(out_dir / file_name, buf.tobytes())
            index.append({'file': file_name, 'image_id': image_id, 'object_index': k, 'class': name,
                          'pixels': pixels})
    fileio.save_json(index, out_dir / 'index.json')
    logger.info('%d occluders from %d segmented images (%d objects skipped: class map disagrees with the XML)',
                len(index), len(image_ids), n_mismatched)
    print(f'pascal_voc: {len(index)} occluders from {len(image_ids)} segmented images -> {out_dir}')
    return index


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.pascal_voc.main', 'PASCAL VOC occluders', {
        'occluders': occluders_stage,
    })


if __name__ == '__main__':
    main()
