"""A fake MIT Indoor Scenes release: Images/<category>/<name>.jpg as indoorCVPR_09.tar extracts (layout from
the dataset page and the tar's listing: one folder per category under Images/), plus one truncated JPEG and a
non-image file."""
from pathlib import Path

import numpy as np

from posepile.util import improc

CATEGORIES = {'airport_inside': 3, 'bakery': 2, 'kitchen': 1}


def write_fake_release(root):
    """Returns the relative paths of the readable images."""
    root = Path(root)
    readable = []
    for c, (category, count) in enumerate(CATEGORIES.items()):
        for i in range(count):
            relpath = f'Images/{category}/{category}_{i:04d}.jpg'
            (root / relpath).parent.mkdir(parents=True, exist_ok=True)
            (root / relpath).write_bytes(improc.encode_jpeg(np.full((48, 64, 3), 30 * c + 10 * i, np.uint8)))
            readable.append(relpath)
    broken = improc.encode_jpeg(np.zeros((48, 64, 3), np.uint8))
    (root / 'Images/bakery/broken.jpg').write_bytes(broken[:len(broken) // 2])
    (root / 'Images/kitchen/Thumbs.db').write_bytes(b'\x00' * 10)
    return sorted(readable)
