"""`posepile show`: a contact sheet of crops with skeletons, tinted masks and a few 3D side views."""
import argparse
import html
import logging
from pathlib import Path

import cv2
import numpy as np

from posepile.datasets3d import SPLIT_NAMES, TEST, TRAIN, VALID
from posepile.util import drawing, masks
from posepile.util.fileio import atomic_write

logger = logging.getLogger(__name__)
SPLITS_BY_NAME = {'train': TRAIN, 'valid': VALID, 'test': TEST}


def _projected_coords(example):
    if hasattr(example, 'world_coords') and example.world_coords is not None:
        return example.camera.world_to_image(example.world_coords)
    return getattr(example, 'coords', None)  # None: a parametric-only 3D example (no joints stored)


def render_example(example, joint_info, tile_size=192):
    """One tile: the crop fitted into tile_size², mask tinted, skeleton and box drawn."""
    image = np.ascontiguousarray(example.get_image()).copy()
    if example.mask is not None:
        drawing.tint_mask(image, masks.decode(example.mask))
    drawing.draw_box(image, example.bbox)
    coords = _projected_coords(example)
    if coords is not None:
        drawing.draw_skeleton(image, coords, joint_info)
    h, w = image.shape[:2]
    scale = tile_size / max(h, w)
    resized = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=cv2.INTER_AREA)
    tile = np.zeros((tile_size, tile_size, 3), np.uint8)
    y0 = (tile_size - resized.shape[0]) // 2
    x0 = (tile_size - resized.shape[1]) // 2
    tile[y0:y0 + resized.shape[0], x0:x0 + resized.shape[1]] = resized
    return tile


def make_contact_sheet(dataset, split=TRAIN, n=64, tile_size=192, n_side_views=4, seed=0):
    """RGB image: a grid of `n` evenly spaced examples, followed by 3D side views of a few of them."""
    examples = dataset.examples[split]
    if len(examples) == 0:
        raise ValueError(f'{dataset} has no {SPLIT_NAMES[split]} examples to show')
    indices = np.unique(np.linspace(0, len(examples) - 1, min(n, len(examples))).round().astype(int))
    tiles = []
    for i in indices:
        tile = render_example(examples[i], dataset.joint_info, tile_size)
        drawing.put_label(tile, f'#{i}')
        tiles.append(tile)
    is_3d = getattr(examples[0], 'world_coords', None) is not None
    if is_3d:
        for i in indices[np.linspace(0, len(indices) - 1, min(n_side_views, len(indices))).astype(int)]:
            ex = examples[i]
            view = drawing.draw_3d_side_view(ex.world_coords, dataset.joint_info, tile_size,
                                             world_up=ex.camera.world_up)
            drawing.put_label(view, f'#{i} side view')
            tiles.append(view)
    n_cols = int(np.ceil(np.sqrt(len(tiles))))
    n_rows = int(np.ceil(len(tiles) / n_cols))
    sheet = np.zeros((n_rows * tile_size, n_cols * tile_size, 3), np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, n_cols)
        sheet[r * tile_size:(r + 1) * tile_size, c * tile_size:(c + 1) * tile_size] = tile
    return sheet, indices


def write_png(path, rgb):
    ok, buf = cv2.imencode('.png', rgb[..., ::-1])
    if not ok:
        raise RuntimeError(f'PNG encoding failed for {path}')
    with atomic_write(path, 'wb') as f:
        f.write(buf.tobytes())


def write_html(dataset, split, indices, sheet_path, html_path, large_size=512):
    """An HTML page with the sheet, each tile linking to a larger rendering."""
    html_path = Path(html_path)
    large_dir = html_path.parent / (html_path.stem + '_large')
    rows = []
    for i in indices:
        name = f'{int(i):06d}.png'
        write_png(large_dir / name, render_example(dataset.examples[split][i], dataset.joint_info, large_size))
        rows.append(f'<a href="{large_dir.name}/{name}">#{int(i)} '
                    f'{html.escape(str(dataset.examples[split][i].image_path))}</a><br>')
    page = (f'<html><body><h1>{html.escape(repr(dataset))}</h1>'
            f'<img src="{html.escape(Path(sheet_path).name)}"><br>' + '\n'.join(rows) + '</body></html>')
    with atomic_write(html_path, 'w', encoding='utf-8') as f:
        f.write(page)


def load_any(name_or_path):
    path = Path(name_or_path)
    if path.is_dir():
        from posepile.storage.barecat_store import archive_exists, open_dataset
        if archive_exists(path / 'annotations.barecat'):  # either layout (index inside, or the sidecar)
            return open_dataset(path)
    from posepile.datasets3d import get_dataset
    return get_dataset(str(name_or_path))


def main(argv=None):
    parser = argparse.ArgumentParser(prog='posepile show', description=__doc__)
    parser.add_argument('dataset', help='registered name, .posepile file, Barecat export folder, or an '
                                        'augmentation asset pool (pascal_voc, inria_holidays, indoorscenes)')
    parser.add_argument('--split', default='train', choices=sorted(SPLITS_BY_NAME))
    parser.add_argument('--n', type=int, default=64)
    parser.add_argument('--tile-size', type=int, default=192)
    parser.add_argument('--out', required=True, help='PNG path')
    parser.add_argument('--html', action='store_true', help='also write OUT.html linking larger views')
    args = parser.parse_args(argv)
    from posepile import augment
    if args.dataset in augment.ASSET_NAMES and not Path(args.dataset).exists():  # augmentation asset pools
        sheet, n_tiles = augment.contact_sheet(args.dataset, args.n, args.tile_size)
        write_png(args.out, sheet)
        print(f'wrote {args.out} ({n_tiles} {args.dataset} assets)')
        return
    dataset = load_any(args.dataset)
    split = SPLITS_BY_NAME[args.split]
    sheet, indices = make_contact_sheet(dataset, split, args.n, args.tile_size)
    write_png(args.out, sheet)
    if args.html:
        write_html(dataset, split, indices, args.out, Path(args.out).with_suffix('.html'))
    print(f'wrote {args.out} ({len(indices)} examples)')
