"""posepile/ds/h36m/main.sh end to end on a fake release (CDFs, marker videos, metadata.xml)."""
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.h36m import main as h36m
from posepile.paths import realdata_root
from posepile.util import improc
from posepile.util.sampling import select_frames
from tests.fakes import h36m as fake

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('h36m_data')
    written = fake.write_recipe_release(data_root / 'h36m', realdata=realdata_root())
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/h36m/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return data_root, written


def _load(data_root, name):
    from posepile.storage.annotations import load_dataset
    return load_dataset(data_root / 'cache' / f'{name}.posepile')


def test_counts_follow_the_sampling_rules(built):
    data_root, written = built
    dataset = _load(data_root, 'h36m')
    poses = written[('S1', 'Directions 1')]
    n_train = len(select_frames(poses[::5], 100))
    n_test = 4 * sum(len(range(0, len(p), 64)) for (s, _), p in written.items() if s in ('S9', 'S11'))
    assert len(dataset.examples[0]) == 4 * n_train
    assert len(dataset.examples[2]) == n_test
    assert dataset.joint_info.n_joints == 17
    assert _load(data_root, 'h36m_alljoints').joint_info.n_joints == 25
    assert not list((data_root / 'h36m').glob('*/Images/**/*.jpg'))  # crops straight from the videos


def test_joints_in_mm_and_markers_at_the_projected_joints(built):
    data_root, written = built
    dataset = _load(data_root, 'h36m')
    errors = []
    for example in list(dataset.examples[0])[:6] + list(dataset.examples[2])[:6]:
        assert 50 < np.nanmax(example.world_coords[:, 2]) < 2500  # mm, z up
        crop = improc.imread_rgb(data_root / example.image_path)[..., 1].astype(np.float64) - 50
        h, w = crop.shape
        assert 0 <= example.bbox[0] and example.bbox[0] + example.bbox[2] <= w + 1
        projected = example.camera.world_to_image(example.world_coords)
        for j in (0, 3, 6, 10, 13, 16):  # pelvis, ankles, head top, wrists: well apart
            u, v = projected[j]
            others = np.delete(projected, j, axis=0)
            scale = example.camera.intrinsic_matrix[0, 0] / 1145  # crop px per source px (blob size)
            if not (8 <= u < w - 8 and 8 <= v < h - 8) or \
                    np.min(np.linalg.norm(others - projected[j], axis=1)) < 16 * max(scale, 1):
                continue  # near the border or another joint's dot: the centroid would be biased
            patch = np.clip(crop[int(v) - 6:int(v) + 7, int(u) - 6:int(u) + 7], 0, None)
            ys, xs = np.mgrid[int(v) - 6:int(v) + 7, int(u) - 6:int(u) + 7]
            centroid = np.array([(xs * patch).sum(), (ys * patch).sum()]) / patch.sum()
            errors.append(np.linalg.norm(centroid - projected[j]))
    assert len(errors) > 30
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_eval_reads_the_release(built, tmp_path, monkeypatch):
    from posepile.ds.h36m import eval as h36m_eval
    from posepile.eval.predictions import save_predictions
    data_root, _ = built
    monkeypatch.setenv('DATA_ROOT', str(data_root))
    dataset = _load(data_root, 'h36m')
    test = list(dataset.examples[2])
    save_predictions(tmp_path / 'p.npz', [ex.image_path for ex in test], np.stack([ex.world_coords for ex in test]))
    results = h36m_eval.main(['--pred-path', str(tmp_path / 'p.npz')])
    assert results['n'] == len(test) and results['mpjpe_mm'] == pytest.approx(0, abs=1e-3)


def test_missing_video_is_named_and_skip_broken_builds_the_rest(tmp_path):
    from posepile.preproc.pipeline import recipe_crop_results
    from posepile.preproc.video_stage import BrokenVideosError, video_stage_report
    data_root = tmp_path
    fake.write_recipe_release(data_root / 'h36m', realdata=realdata_root(), actions={'S1': {'Directions 1': 12}})
    video = data_root / 'h36m' / 'S1' / 'Videos' / 'Directions 1.58860488.mp4'
    saved = video.read_bytes()
    video.unlink()
    with pytest.raises(BrokenVideosError, match='Directions 1.58860488.mp4'):
        h36m.video_stage(n_workers=1, data_root=data_root)
    h36m.video_stage(n_workers=1, skip_broken=True, data_root=data_root)
    results = recipe_crop_results('h36m', data_root)
    assert {key.split('/')[3] for key, _ in results} == {'54138969', '55011271', '60457274'}
    report = video_stage_report(data_root / 'h36m' / 'posepile_work' / 'crops')
    assert [s['video'] for s in report['skipped_videos']] == [str(video)]
    # restoring the file and rerunning redoes exactly that video
    video.write_bytes(saved)
    h36m.video_stage(n_workers=1, data_root=data_root)
    assert {key.split('/')[3] for key, _ in recipe_crop_results('h36m', data_root)} == \
        {'54138969', '55011271', '58860488', '60457274'}
    assert not list((data_root / 'h36m').glob('*/Images/**/*.jpg'))  # no full frames were written
