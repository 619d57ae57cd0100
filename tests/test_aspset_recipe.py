import os
import subprocess
from pathlib import Path

import numpy as np

from posepile.util.sampling import select_frames
from tests.markers import dot_errors
from tests.fakes import aspset as fake

REPO = Path(__file__).resolve().parent.parent


def test_aspset_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'aspset', n_frames=16, image_scale=0.25, videos=True)
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/aspset/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'aspset.posepile')
    n_train = 3 * len(select_frames(written[('1b2e', '0002')], 100))
    n_test = 3 * len(range(0, 16, 5)) + 1 * len(range(0, 16, 5))
    assert len(dataset.examples[0]) == n_train and len(dataset.examples[2]) == n_test
    errors = []
    for example in list(dataset.examples[0])[:6] + list(dataset.examples[2])[:6]:
        projected = example.camera.world_to_image(example.world_coords)
        r = max(3, int(round(5 * example.camera.intrinsic_matrix[0, 0] / 977)))
        errors += dot_errors(data_root / example.image_path, projected, r)
    assert len(errors) > 15
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_aspset_boxes_are_the_shipped_boxes_expanded_1_1(data_root):
    """The original expands the boxes CSV's (l, t, r, b) boxes by 1.1 about their centre."""
    fake.write_fake_release(data_root / 'aspset', n_frames=8, image_scale=0.25, videos=True)
    from posepile.ds.aspset import main as aspset
    tasks = aspset.make_video_tasks(data_root)
    n_checked = 0
    for task in tasks:
        subject, clip, camera = task.key.split('-')
        split_dir = next(p for p in (data_root / 'aspset').glob(f'*/boxes/{subject}/{task.key}.csv'))
        ltrb = np.loadtxt(split_dir, delimiter=',', skiprows=1, ndmin=2)
        for frame, people in task.frames.items():
            l, t, r, b = ltrb[frame]
            cx, cy, w, h = (l + r) / 2, (t + b) / 2, 1.1 * (r - l), 1.1 * (b - t)
            np.testing.assert_allclose(people[0].example.bbox, [cx - w / 2, cy - h / 2, w, h], atol=1e-3)
            n_checked += 1
    assert n_checked > 10
