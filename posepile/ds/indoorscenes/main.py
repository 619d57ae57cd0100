"""MIT Indoor Scenes (Quattoni & Torralba, CVPR 2009) as a background pool (nlf-era-facts §1.4, indoorscenes).

The original only downloads and extracts it (NLF does not use it). Raw release: indoorCVPR_09.tar extracted
under $DATA_ROOT/indoorscenes, giving Images/<category>/<name>.jpg (67 categories, 15,620 images).

Stage `list`: every readable image under Images/ -> image_list.txt (paths relative to $DATA_ROOT/indoorscenes,
sorted; files that are not decodable images are left out and counted).
"""
import logging

from posepile.preproc import pipeline
from posepile.util import fileio, improc
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'indoorscenes'
IMAGE_LIST = 'image_list.txt'
EXTENSIONS = ('.jpg', '.jpeg', '.png', '.gif')


def root_dir(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def list_stage():
    """List the readable images under Images/ into image_list.txt."""
    images_dir = root_dir() / 'Images'
    if not images_dir.is_dir():
        raise InputError(f'{images_dir} not found: extract indoorCVPR_09.tar into {root_dir()}')
    candidates = sorted(p for p in images_dir.rglob('*') if p.is_file() and p.suffix.lower() in EXTENSIONS)
    readable = [p for p in candidates if improc.is_readable_image(p)]
    relpaths = [p.relative_to(root_dir()).as_posix() for p in readable]
    fileio.write_bytes_atomic(root_dir() / IMAGE_LIST, ''.join(f'{r}\n' for r in relpaths).encode())
    n_categories = len({r.split('/')[1] for r in relpaths})
    print(f'indoorscenes: {len(relpaths)} images in {n_categories} categories ({len(candidates) - len(readable)} '
          f'unreadable left out) -> {root_dir() / IMAGE_LIST}')
    return relpaths


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.indoorscenes.main', 'MIT Indoor Scenes image list', {
        'list': list_stage,
    })


if __name__ == '__main__':
    main()
