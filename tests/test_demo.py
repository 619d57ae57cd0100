"""The demo main.sh end to end on a short capture, including an interruption and resume."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
MAIN_SH = REPO / 'posepile' / 'ds' / 'demo' / 'main.sh'
N_FRAMES = 40


def _env(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), POSEPILE_DEMO_FRAMES=str(N_FRAMES), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    return env


def _run(data_root):
    result = subprocess.run(['bash', str(MAIN_SH)], cwd=REPO, env=_env(data_root), capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line.startswith('summary: ')
    return json.loads(last_line[len('summary: '):]), result.stdout


def _outputs(data_root):
    """Bytes of everything the pipeline produced that must not depend on interruptions."""
    root = Path(data_root)
    files = {}
    for pattern in ('demo_downscaled/**/*.jpg', 'demo/frames/**/*.jpg', 'cache/demo.posepile/*',
                    'demo/posepile_work/*.json', 'demo/posepile_work/*.pkl', 'demo/posepile_work/*.npz'):
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                data = path.read_bytes()
                if path.suffix == '.json' and b'inputs_fingerprint' in data:
                    # the fingerprint holds input paths and mtimes, which differ between two data roots
                    data = json.dumps(json.loads(data)['value']).encode()
                files[str(path.relative_to(root))] = data
    return files


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('demo_reference')
    summary, stdout = _run(data_root)
    return data_root, summary, stdout


def test_demo_summary_numbers(finished_run):
    data_root, summary, stdout = finished_run
    assert summary['frames'] == N_FRAMES * 4
    assert summary['examples'] > 80
    assert summary['seg_iou'] >= 0.70
    assert summary['reproj_px'] < 1.0
    # the baseline is ground truth + 30 mm Gaussian noise per coordinate, root-relative:
    # E|N(0, 2 s^2 I3)| = 2 s sqrt(2/pi) * sqrt(2) = 67.7 mm for every non-root joint (16 of 17)
    assert 50 < summary['mpjpe_mm'] < 75
    assert Path(summary['contact_sheet']).stat().st_size > 10000
    assert 'MPJPE' in stdout and 'segmentation IoU' in stdout
    # the Barecat export is complete and readable
    from posepile.storage.barecat_store import BarecatDataset
    exported = BarecatDataset(data_root / 'demo_barecat')
    assert sum(len(examples) for examples in exported.examples.values()) == summary['examples']
    example = exported.examples[0][3]
    assert example.image.ndim == 3 and example.world_coords.shape == (17, 3)


def test_rerun_skips_finished_stages(finished_run):
    data_root, summary, _ = finished_run
    before = _outputs(data_root)
    mtimes = {p: (Path(data_root) / p).stat().st_mtime_ns for p in before if p.endswith('.jpg')}
    start = time.time()
    again, _ = _run(data_root)
    assert time.time() - start < summary['seconds']
    assert _outputs(data_root) == before
    assert all((Path(data_root) / p).stat().st_mtime_ns == t for p, t in mtimes.items())
    assert {k: v for k, v in again.items() if k not in ('seconds', 'contact_sheet')} == \
        {k: v for k, v in summary.items() if k not in ('seconds', 'contact_sheet')}


def test_killed_run_resumes_to_identical_outputs(finished_run, tmp_path):
    reference_root, summary, _ = finished_run
    data_root = tmp_path / 'interrupted'
    data_root.mkdir()
    process = subprocess.Popen(['bash', str(MAIN_SH)], cwd=REPO, env=_env(data_root), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    crops = data_root / 'demo_downscaled'
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        if crops.exists() and sum(1 for _ in crops.rglob('*.jpg')) >= 20:
            break
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)  # the whole process group, workers included
    process.wait()
    assert not (data_root / 'cache' / 'demo.posepile').exists(), 'killed too late: the run had finished'
    resumed, _ = _run(data_root)
    assert _outputs(data_root) == _outputs(reference_root)
    assert resumed['seg_iou'] == summary['seg_iou'] and resumed['examples'] == summary['examples']


def test_demo_dataset_merges_exports_and_trains_through_pytorch(finished_run, tmp_path, monkeypatch):
    """The main.sh-built dataset merged with another source, exported, verified, and loaded in batches by
    a multi-worker PyTorch DataLoader."""
    torch = pytest.importorskip('torch', reason='PyTorch not installed (pip install "posepile[torch]")')
    from posepile.datasets3d import TEST, TRAIN, VALID, get_dataset
    from posepile.merging.merge import merge_datasets
    from posepile.storage import barecat_store
    from posepile.storage.torch import TorchPoseDataset
    data_root, summary, _ = finished_run
    monkeypatch.setenv('DATA_ROOT', str(data_root))
    demo = get_dataset('demo')
    # a second source with its own joint identities (suffix), its test split used for validation
    merged = merge_datasets([(demo, [(TRAIN, TRAIN)], 'demo'), (demo, [(TEST, VALID)], 'cam')])
    assert merged.joint_info.n_joints == 2 * 17
    assert [c['train'] for c in merged.source_counts] == [len(demo.examples[TRAIN]), 0]
    assert len(merged.examples[VALID]) == len(demo.examples[TEST])
    first = merged.examples[TRAIN][0]
    assert np.all(np.isfinite(first.world_coords[:17])) and np.all(np.isnan(first.world_coords[17:]))
    out = tmp_path / 'merged_barecat'
    barecat_store.export_dataset(merged, out, image_root=data_root)
    assert barecat_store.verify(out) == []
    loader = torch.utils.data.DataLoader(TorchPoseDataset(out, TRAIN, output_size=128), batch_size=16,
                                         num_workers=2, shuffle=True)
    batch = next(iter(loader))
    assert tuple(batch['image'].shape) == (16, 3, 128, 128)
    assert tuple(batch['coords3d_cam'].shape) == (16, 34, 3)
    assert torch.isfinite(batch['coords3d_cam'][:, :17]).all()
