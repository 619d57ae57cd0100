"""A fake PASCAL VOC 2012 release in the official devkit layout (VOCdevkit/VOC2012/...).

Layout evidence: the VOC2012 devkit documentation and its files: Annotations/<id>.xml (<object> with name,
pose, truncated, difficult, bndbox; <segmented>), SegmentationObject/<id>.png and SegmentationClass/<id>.png as
8-bit PALETTE PNGs with the VOC colour map (index k = the k-th <object> / class index + 1, 0 background,
255 void on the objects' boundaries), JPEGImages/<id>.jpg, ImageSets/Segmentation/trainval.txt.
PNGs are written here byte by byte (zlib, PLTE) since no imaging library is assumed.
"""
import struct
import zlib
from pathlib import Path

import numpy as np

from posepile.util import improc

CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow', 'diningtable',
           'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')
HEIGHT, WIDTH = 120, 160
# image id -> objects: (class, truncated, difficult, x, y, w, h, class drawn in SegmentationClass or None = same)
IMAGES = {
    '2007_000032': [
        ('dog', 0, 0, 10, 10, 40, 30, None),        # 1200 px: an occluder
        ('person', 0, 0, 60, 10, 30, 40, None),     # person: never
        ('cat', 0, 1, 100, 10, 30, 30, None),       # difficult
        ('car', 1, 0, 10, 60, 30, 30, None),        # truncated
        ('bird', 0, 0, 60, 70, 20, 15, None),       # 300 px: too small
    ],
    '2007_000039': [
        ('chair', 0, 0, 20, 20, 40, 30, None),      # 1200 px: an occluder (even-aligned rectangle)
        ('bottle', 0, 0, 80, 10, 25, 20, None),     # exactly 500 px: kept
        ('sofa', 0, 0, 80, 50, 499, 1, None),       # 499 px (one row, clipped below): too small
        ('cow', 0, 0, 10, 70, 30, 30, 'horse'),     # the class map disagrees with the XML: skipped
    ],
}
UNSEGMENTED = '2007_000027'  # an annotated image without segmentation: ignored


def voc_colormap():
    colours = np.zeros((256, 3), np.uint8)
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours[i] = (r, g, b)
    return colours


def write_palette_png(path, indices, palette=None):
    """An 8-bit palette PNG (colour type 3) of uint8 indices."""
    palette = voc_colormap() if palette is None else palette
    height, width = indices.shape

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b''.join(b'\x00' + indices[y].astype(np.uint8).tobytes() for y in range(height))
    data = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 3, 0, 0, 0))
            + chunk(b'PLTE', palette.tobytes()) + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)


def _xml(image_id, objects, segmented):
    parts = [f'<annotation><folder>VOC2012</folder><filename>{image_id}.jpg</filename>'
             f'<size><width>{WIDTH}</width><height>{HEIGHT}</height><depth>3</depth></size>'
             f'<segmented>{int(segmented)}</segmented>']
    for name, truncated, difficult, x, y, w, h, _ in objects:
        parts.append(f'<object><name>{name}</name><pose>Unspecified</pose><truncated>{truncated}</truncated>'
                     f'<difficult>{difficult}</difficult><bndbox><xmin>{x + 1}</xmin><ymin>{y + 1}</ymin>'
                     f'<xmax>{min(x + w, WIDTH)}</xmax><ymax>{min(y + h, HEIGHT)}</ymax></bndbox></object>')
    parts.append('</annotation>')
    return '\n'.join(parts)


def object_colour(k):
    return np.array([(40 * k) % 256, 200 - 20 * k, 60 + 30 * k], np.uint8)


def write_fake_release(root):
    """Writes under root (= $DATA_ROOT/pascal_voc). Returns {image_id: [object dict with pixels]}."""
    voc = Path(root) / 'VOCdevkit' / 'VOC2012'
    written = {}
    for image_id, objects in IMAGES.items():
        instance = np.zeros((HEIGHT, WIDTH), np.uint8)
        classes = np.zeros((HEIGHT, WIDTH), np.uint8)
        image = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
        written[image_id] = []
        for k, (name, truncated, difficult, x, y, w, h, drawn_class) in enumerate(objects, start=1):
            region = (slice(y, min(y + h, HEIGHT)), slice(x, min(x + w, WIDTH)))
            # a 1-px void band around the object, as VOC's boundary labelling
            band = (slice(max(y - 1, 0), min(y + h + 1, HEIGHT)), slice(max(x - 1, 0), min(x + w + 1, WIDTH)))
            instance[band] = np.where(instance[band] == 0, 255, instance[band])
            classes[band] = np.where(classes[band] == 0, 255, classes[band])
            instance[region] = k
            classes[region] = CLASSES.index(drawn_class or name) + 1
            image[region] = object_colour(k)
            written[image_id].append({'index': k, 'name': name, 'truncated': bool(truncated),
                                      'difficult': bool(difficult), 'class_consistent': drawn_class is None})
        for entry in written[image_id]:
            entry['pixels'] = int((instance == entry['index']).sum())
        write_palette_png(voc / 'SegmentationObject' / f'{image_id}.png', instance)
        write_palette_png(voc / 'SegmentationClass' / f'{image_id}.png', classes)
        (voc / 'JPEGImages').mkdir(parents=True, exist_ok=True)
        (voc / 'JPEGImages' / f'{image_id}.jpg').write_bytes(improc.encode_jpeg(image, 100))
        (voc / 'Annotations').mkdir(parents=True, exist_ok=True)
        (voc / 'Annotations' / f'{image_id}.xml').write_text(_xml(image_id, objects, True))
    (voc / 'Annotations' / f'{UNSEGMENTED}.xml').write_text(_xml(UNSEGMENTED, [('dog', 0, 0, 0, 0, 60, 60, None)],
                                                                 False))
    (voc / 'JPEGImages' / f'{UNSEGMENTED}.jpg').write_bytes(improc.encode_jpeg(np.zeros((HEIGHT, WIDTH, 3),
                                                                                        np.uint8)))
    (voc / 'ImageSets' / 'Segmentation').mkdir(parents=True, exist_ok=True)
    (voc / 'ImageSets' / 'Segmentation' / 'trainval.txt').write_text(''.join(f'{i}\n' for i in IMAGES))
    return written
