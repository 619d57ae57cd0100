"""INRIA Holidays backgrounds for background augmentation (nlf-era-facts §1.4, inria_holidays).

Raw release: jpg1.tar.gz and jpg2.tar.gz extracted under $DATA_ROOT/inria_holidays, giving jpg/<id>.jpg
(1,491 holiday photos, many stored sideways with an EXIF orientation tag).

Stages (the original's prepare_images + person detection + find_nonperson_images):
  prepare: every jpg/*.jpg -> EXIF orientation applied, centre square crop (side = the shorter side), resized
           to 512 x 512 (area interpolation) -> jpg_small/<id>.jpg
  detect:  people in jpg_small/ with the configured detector ($POSEPILE_DETECTOR or --detector; HOG when
           neither is set; the original used YOLOv4) -> posepile_work/detections.pkl
  select:  the images without any person detection -> non_person_images.txt (one jpg_small/ name a line,
           sorted), read by posepile.augment.sample_background.
"""
import logging
import struct
from pathlib import Path

import cv2
import numpy as np

from posepile.preproc import pipeline
from posepile.util import fileio, improc
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'inria_holidays'
SIDE = 512
NON_PERSON_LIST = 'non_person_images.txt'


class InriaHolidaysFormatError(InputError):
    pass


def root_dir(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def small_dir(data_root=None):
    return root_dir(data_root) / 'jpg_small'


# ------------------------------------------------------------------------------------------------------
# EXIF orientation (read from the JPEG's APP1 segment; no imaging library needed)
def exif_orientation(data):
    """The EXIF Orientation tag (1-8) of JPEG bytes, 1 when absent."""
    if data[:2] != b'\xff\xd8':
        return 1
    offset = 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no more metadata
            break
        length = struct.unpack('>H', data[offset + 2:offset + 4])[0]
        segment = data[offset + 4:offset + 2 + length]
        if marker == 0xE1 and segment[:6] == b'Exif\x00\x00':
            return _orientation_from_tiff(segment[6:])
        offset += 2 + length
    return 1


def _orientation_from_tiff(tiff):
    if len(tiff) < 8 or tiff[:2] not in (b'II', b'MM'):
        return 1
    endian = '<' if tiff[:2] == b'II' else '>'
    ifd_offset = struct.unpack(endian + 'I', tiff[4:8])[0]
    if ifd_offset + 2 > len(tiff):
        return 1
    n_entries = struct.unpack(endian + 'H', tiff[ifd_offset:ifd_offset + 2])[0]
    for i in range(n_entries):
        entry = tiff[ifd_offset + 2 + 12 * i:ifd_offset + 14 + 12 * i]
        if len(entry) < 12:
            break
        tag, kind = struct.unpack(endian + 'HH', entry[:4])
        if tag == 0x0112 and kind == 3:
            value = struct.unpack(endian + 'H', entry[8:10])[0]
            return value if 1 <= value <= 8 else 1
    return 1


def apply_orientation(image, orientation):
    """The image as it is meant to be seen (EXIF orientation 1-8, as PIL.ImageOps.exif_transpose)."""
    operations = {
        1: lambda im: im,
        2: lambda im: im[:, ::-1],
        3: lambda im: im[::-1, ::-1],
        4: lambda im: im[::-1],
        5: lambda im: np.transpose(im, (1, 0, 2)),
        6: lambda im: np.rot90(im, -1),
        7: lambda im: np.transpose(im, (1, 0, 2))[::-1, ::-1],
        8: lambda im: np.rot90(im, 1),
    }
    return np.ascontiguousarray(operations[orientation](image))


def prepare_image(data, name):
    """JPEG bytes -> 512 x 512 RGB: EXIF orientation, centre square crop, resize."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise InriaHolidaysFormatError(f'{name}: cannot decode image')
    image = apply_orientation(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), exif_orientation(data))
    h, w = image.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    square = image[y0:y0 + side, x0:x0 + side]
    interpolation = cv2.INTER_AREA if side >= SIDE else cv2.INTER_CUBIC
    return cv2.resize(square, (SIDE, SIDE), interpolation=interpolation)


def prepare_stage():
    """EXIF-rotate, centre-crop and resize every photo to jpg_small/ (512 x 512)."""
    source_dir = root_dir() / 'jpg'
    paths = sorted(source_dir.glob('*.jpg'))
    if not paths:
        raise InputError(f'{source_dir} holds no .jpg: extract jpg1.tar.gz and jpg2.tar.gz into {root_dir()}')
    out_dir = small_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm
    for path in tqdm(paths, desc='inria_holidays prepare', mininterval=2, disable=None):
        target = out_dir / path.name
        if target.exists():
            continue
        data = path.read_bytes()
        improc.check_complete(data, str(path))
        improc.write_jpeg_atomic(target, prepare_image(data, path), quality=95)
    print(f'inria_holidays: {len(paths)} photos -> {out_dir}')


def detect_stage(detector_spec=None, shard=None):
    """Detect people in jpg_small/ (the configured detector; HOG when none is configured)."""
    from posepile.preproc.detection import run_detection_stage
    names = sorted(p.name for p in small_dir().glob('*.jpg'))
    if not names:
        raise InputError(f'{small_dir()} holds no .jpg: run the prepare stage first')
    spec = pipeline.configured_detector(detector_spec)
    if spec is None:
        logger.warning('no detector configured ($POSEPILE_DETECTOR): using HOG (the original used YOLOv4)')
        spec = 'hog'
    run_detection_stage(small_dir(), names, detections_path(), detector_spec=spec, shard=shard)


detect_stage.cli_options = [pipeline.DETECTOR_OPTION]


def detections_path():
    return pipeline.work_dir(NAME) / 'detections.pkl'


def non_person_names(detections, min_score=0.0):
    """Names of the images without a person detection scoring above min_score, sorted."""
    return sorted(name for name, boxes in detections.items()
                  if not np.any(np.asarray(boxes, np.float32).reshape(-1, 5)[:, 4] > min_score))


def select_stage():
    """Write non_person_images.txt: the jpg_small/ images without a person detection."""
    path = detections_path()
    if not path.exists():
        raise InputError(f'{path} not found: run the detect stage first')
    detections = fileio.load_pickle(path)
    names = non_person_names(detections)
    fileio.write_bytes_atomic(root_dir() / NON_PERSON_LIST, ''.join(f'{n}\n' for n in names).encode())
    print(f'inria_holidays: {len(names)} of {len(detections)} images without people -> '
          f'{root_dir() / NON_PERSON_LIST}')
    return names


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.inria_holidays.main', 'INRIA Holidays backgrounds', {
        'prepare': prepare_stage,
        'detect': detect_stage,
        'select': select_stage,
    })


if __name__ == '__main__':
    main()
