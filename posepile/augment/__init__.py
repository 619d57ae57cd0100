"""Augmentation assets for a training loop: PASCAL VOC occluders and person-free backgrounds.

Built by the recipes posepile/ds/pascal_voc (occluders: RGBA PNGs + index.json), posepile/ds/inria_holidays
(512 x 512 backgrounds + non_person_images.txt) and posepile/ds/indoorscenes (image_list.txt), all under
$DATA_ROOT. Loaded lazily on first use and cached per process (DATA_ROOT at that time):

  occluder = sample_occluder(rng)         Occluder(rgb uint8 (h, w, 3), mask float32 (h, w) in [0, 1], name)
  background = sample_background(rng)     uint8 RGB 512 x 512 INRIA Holidays photo without people
  paste_occluder(image, occluder, center_xy, scale)   alpha-blends it in place, returns the image
  occlude_randomly(image, rng)            a few occluders at random places and sizes (see its docstring)
  indoor_scene_paths()                    the MIT Indoor Scenes image paths (absolute)
  contact_sheet(name)                     RGB overview of an asset pool (`posepile show pascal_voc --out x.png`)

`rng` is a numpy Generator (np.random.default_rng(seed)).
"""
import dataclasses
import functools
import logging
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger(__name__)
ASSET_NAMES = ('pascal_voc', 'inria_holidays', 'indoorscenes')


class AssetsNotBuiltError(FileNotFoundError):
    def __str__(self):
        return self.args[0]


@dataclasses.dataclass
class Occluder:
    rgb: np.ndarray  # uint8 (h, w, 3)
    mask: np.ndarray  # float32 (h, w), 1 inside, 0.75 on the rim, 0 outside
    name: str


def _data_root():
    from posepile.paths import data_root
    return Path(data_root())


# ------------------------------------------------------------------------------------------------------
# Occluders
@functools.lru_cache(maxsize=4)
def _occluders(root):
    folder = Path(root) / 'pascal_voc' / 'occluders'
    index_path = folder / 'index.json'
    if not index_path.exists():
        raise AssetsNotBuiltError(
            f'{index_path} not found: build the occluders with bash posepile/ds/pascal_voc/main.sh')
    from posepile.util import fileio
    from posepile.util.errors import InputError
    result = []
    for item in fileio.load_json(index_path):
        path = folder / item['file']
        rgba = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if rgba is None or rgba.ndim != 3 or rgba.shape[2] != 4:
            raise InputError(f'{path}: not an RGBA PNG occluder (rebuild with posepile/ds/pascal_voc/main.sh)')
        rgb = cv2.cvtColor(rgba[..., :3], cv2.COLOR_BGR2RGB)
        result.append(Occluder(rgb, rgba[..., 3].astype(np.float32) / 255, item['file']))
    if not result:
        raise AssetsNotBuiltError(f'{index_path} lists no occluders')
    return result


def load_occluders():
    """All occluders (cached)."""
    return _occluders(str(_data_root()))


def sample_occluder(rng):
    occluders = load_occluders()
    return occluders[int(rng.integers(len(occluders)))]


def paste_occluder(image, occluder, center_xy, scale=1.0):
    """Alpha-blend `occluder` (resized by `scale`) into uint8 RGB `image` centred at `center_xy` (px), in
    place; parts outside the image are cut off. Returns the image."""
    rgb, mask = occluder.rgb, occluder.mask
    if scale != 1.0:
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, size, interpolation=interpolation)
        mask = cv2.resize(mask, size, interpolation=interpolation)
    h, w = mask.shape
    x0 = int(round(center_xy[0] - w / 2))
    y0 = int(round(center_xy[1] - h / 2))
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1, iy1 = min(x0 + w, image.shape[1]), min(y0 + h, image.shape[0])
    if ix1 <= ix0 or iy1 <= iy0:
        return image
    alpha = mask[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0, np.newaxis]
    patch = rgb[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0].astype(np.float32)
    region = image[iy0:iy1, ix0:ix1].astype(np.float32)
    image[iy0:iy1, ix0:ix1] = np.clip(np.round(alpha * patch + (1 - alpha) * region), 0, 255).astype(np.uint8)
    return image


def occlude_randomly(image, rng, max_count=8, scale_range=(0.2, 1.0)):
    """Paste 1..max_count random occluders into `image` (in place), each resized by a factor uniform in
    scale_range times (shorter image side / 256) and centred uniformly over the image. This follows the
    synthetic-occlusion augmentation of Sarandi et al. 2018 as we read its published code; NLF's own
    parameters (nlf/common/augmentation/appearance.py) are not in our facts. Returns the image."""
    image_scale = min(image.shape[:2]) / 256
    for _ in range(int(rng.integers(1, max_count + 1))):
        occluder = sample_occluder(rng)
        scale = rng.uniform(*scale_range) * image_scale
        center = rng.uniform([0, 0], [image.shape[1], image.shape[0]])
        paste_occluder(image, occluder, center, scale)
    return image


# ------------------------------------------------------------------------------------------------------
# Backgrounds
@functools.lru_cache(maxsize=4)
def _background_paths(root):
    folder = Path(root) / 'inria_holidays'
    list_path = folder / 'non_person_images.txt'
    if not list_path.exists():
        raise AssetsNotBuiltError(
            f'{list_path} not found: build the backgrounds with bash posepile/ds/inria_holidays/main.sh')
    names = [line.strip() for line in list_path.read_text().splitlines() if line.strip()]
    if not names:
        raise AssetsNotBuiltError(f'{list_path} lists no images')
    return tuple(str(folder / 'jpg_small' / name) for name in names)


def background_paths():
    return list(_background_paths(str(_data_root())))


def sample_background(rng):
    """A person-free INRIA Holidays background, uint8 RGB 512 x 512."""
    from posepile.util import improc
    paths = _background_paths(str(_data_root()))
    return improc.imread_rgb(paths[int(rng.integers(len(paths)))], strict=True)


@functools.lru_cache(maxsize=4)
def _indoor_paths(root):
    folder = Path(root) / 'indoorscenes'
    list_path = folder / 'image_list.txt'
    if not list_path.exists():
        raise AssetsNotBuiltError(f'{list_path} not found: run bash posepile/ds/indoorscenes/main.sh')
    return tuple(str(folder / line.strip()) for line in list_path.read_text().splitlines() if line.strip())


def indoor_scene_paths():
    return list(_indoor_paths(str(_data_root())))


# ------------------------------------------------------------------------------------------------------
# Contact sheet
def _checkerboard(size, cell=16):
    y, x = np.mgrid[:size, :size]
    return np.where(((x // cell + y // cell) % 2)[..., np.newaxis] == 0, 200, 120).astype(np.uint8).repeat(3, -1)


def _fit(image, tile_size):
    h, w = image.shape[:2]
    scale = tile_size / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def asset_tiles(name, n=64, tile_size=128):
    """(tiles, labels) of n evenly spaced assets of pool `name`: occluders pasted on a checkerboard (so the
    soft mask shows), backgrounds and indoor scenes fitted into the tile."""
    from posepile.util import improc
    tiles, labels = [], []
    if name == 'pascal_voc':
        items = load_occluders()
    elif name == 'inria_holidays':
        items = background_paths()
    elif name == 'indoorscenes':
        items = indoor_scene_paths()
    else:
        raise ValueError(f'unknown asset pool {name!r}; known: {", ".join(ASSET_NAMES)}')
    indices = np.unique(np.linspace(0, len(items) - 1, min(n, len(items))).round().astype(int))
    for i in indices:
        tile = _checkerboard(tile_size)
        if name == 'pascal_voc':
            occluder = items[i]
            scale = tile_size / max(occluder.mask.shape)
            paste_occluder(tile, occluder, (tile_size / 2, tile_size / 2), scale)
            labels.append(Path(occluder.name).stem)
        else:
            image = _fit(improc.imread_rgb(items[i]), tile_size)
            y0, x0 = (tile_size - image.shape[0]) // 2, (tile_size - image.shape[1]) // 2
            tile[y0:y0 + image.shape[0], x0:x0 + image.shape[1]] = image
            labels.append(Path(items[i]).stem)
        tiles.append(tile)
    return tiles, labels


def contact_sheet(name, n=64, tile_size=128):
    """RGB grid of asset tiles (labelled) and the number of tiles."""
    from posepile.util import drawing
    tiles, labels = asset_tiles(name, n, tile_size)
    for tile, label in zip(tiles, labels):
        drawing.put_label(tile, label)
    n_cols = int(np.ceil(np.sqrt(len(tiles))))
    n_rows = int(np.ceil(len(tiles) / n_cols))
    sheet = np.zeros((n_rows * tile_size, n_cols * tile_size, 3), np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, n_cols)
        sheet[r * tile_size:(r + 1) * tile_size, c * tile_size:(c + 1) * tile_size] = tile
    return sheet, len(tiles)
