"""The bad-input contract on the fake releases (issue 13), through the shared fault-injection helper: each
fault ends the recipe non-zero with one line naming the file, and fixing the file then rerunning gives a
build byte-identical to a clean one. Fault classes covered here:

- truncated raw image (tdoh), corrupt JSON (tdoh), truncated video (aspset, surreal, h36m),
- truncated C3D mocap (aspset), inf in ground truth (h36m CDF), implausible units (tdoh joints 1e27),
- a missing annotation file (coco val JSON), a missing video (panoptic HD camera),
- a truncated video in the demo (exits instead of hanging).
Archives (truncated, disk full, hostile) are covered in tests/test_functions_sh.py, predictions in
tests/test_eval_official_edge_cases.py, stage resumption in tests/test_pipeline.py and test_video_stage.py.
"""
import functools
import json
from pathlib import Path

import numpy as np
import pytest

from tests import faults
from tests.fakes import aspset as fake_aspset
from tests.fakes import coco as fake_coco
from tests.fakes import h36m as fake_h36m
from tests.fakes import panoptic as fake_panoptic
from tests.fakes import surreal as fake_surreal
from tests.fakes import tdoh as fake_tdoh


def _tdoh_release(root):
    fake_tdoh.write_fake_release(root / 'tdoh', seed=1, n_images=3, split='trainset', images=True)


@pytest.fixture(scope='module')
def tdoh_reference(tmp_path_factory):
    root = tmp_path_factory.mktemp('tdoh_clean')
    _tdoh_release(root)
    result = faults.run_recipe('tdoh', root)
    assert result.returncode == 0, result.stderr[-2000:]
    return faults.output_bytes(root)


@pytest.mark.parametrize('target, fault, names', [
    ('tdoh/trainset/images/00001.jpg', faults.truncate(0.6), ['00001.jpg', 'truncated JPEG']),
    ('tdoh/trainset/annots.json', faults.corrupt(40, at=0.3), ['annots.json']),
    ('tdoh/trainset/annots.json', faults.replace_text('[[', '[[1e27, '), ['annots.json']),
])
def test_tdoh_faults(tdoh_reference, tmp_path, target, fault, names):
    faults.check_fault_is_reported_and_repaired('tdoh', _tdoh_release, target, fault, tmp_path,
                                                reference=tdoh_reference, names=names)


def _aspset_release(root):
    fake_aspset.write_fake_release(root / 'aspset', n_frames=12, image_scale=0.2, videos=True)


@pytest.fixture(scope='module')
def aspset_reference(tmp_path_factory):
    root = tmp_path_factory.mktemp('aspset_clean')
    _aspset_release(root)
    result = faults.run_recipe('aspset', root)
    assert result.returncode == 0, result.stderr[-2000:]
    return faults.output_bytes(root)


@pytest.mark.parametrize('target, fault, names', [
    ('aspset/test/joints_3d/04ac/04ac-0026.c3d', faults.truncate(0.5), ['04ac-0026.c3d', 'header promises']),
    ('aspset/test/videos/04ac/04ac-0026-mid.mkv', faults.truncate(0.4), ['04ac-0026-mid.mkv']),
])
def test_aspset_faults(aspset_reference, tmp_path, target, fault, names):
    faults.check_fault_is_reported_and_repaired('aspset', _aspset_release, target, fault, tmp_path,
                                                reference=aspset_reference, names=names)


def test_surreal_truncated_clip(tmp_path):
    release = functools.partial(_surreal_release)
    clip = next(Path(p) for p in _surreal_clips(tmp_path))
    faults.check_fault_is_reported_and_repaired('surreal', release, clip, faults.truncate(0.5), tmp_path,
                                                names=[clip.name])


def _surreal_release(root):
    fake_surreal.write_fake_release(root / 'surreal', n_frames=12)


def _surreal_clips(tmp_path):
    probe = tmp_path / 'probe'
    _surreal_release(probe)
    return [p.relative_to(probe) for p in sorted(probe.glob('surreal/**/*.mp4'))]


def _h36m_release(root, poses_fault=None):
    fake_h36m.write_recipe_release(root / 'h36m', actions={'S1': {'Directions 1': 16}})


def test_h36m_inf_in_ground_truth_and_truncated_video(tmp_path):
    def inf_pose(path):
        poses = np.zeros((16, 32, 3)) + 100.0
        poses[3, 7, 1] = np.inf
        fake_h36m.write_pose_cdf(path, poses)
    inf_pose.__name__ = 'inf_pose'
    reference = faults.check_fault_is_reported_and_repaired(
        'h36m', _h36m_release, 'h36m/S1/MyPoseFeatures/D3_Positions/Directions 1.cdf', inf_pose, tmp_path,
        names=['Directions 1.cdf', 'infinite'])
    faults.check_fault_is_reported_and_repaired(
        'h36m', _h36m_release, 'h36m/S1/Videos/Directions 1.54138969.mp4', faults.truncate(0.5), tmp_path,
        reference=reference, names=['Directions 1.54138969.mp4'])


def test_coco_missing_val_annotations(tmp_path):
    def release(root):
        fake_coco.write_fake_release(root / 'coco')
    faults.check_fault_is_reported_and_repaired('coco', release, 'coco/annotations/person_keypoints_val2017.json',
                                                faults.remove, tmp_path, names=['person_keypoints_val2017.json'])


def test_panoptic_missing_hd_video(tmp_path):
    def release(root):
        fake_panoptic.write_fake_release(root / 'panoptic', n_frames=6)
    target = f'panoptic/{fake_panoptic.SEQUENCE}/hdVideos/hd_00_01.mp4'
    faults.check_fault_is_reported_and_repaired('panoptic', release, target, faults.remove, tmp_path,
                                                names=['hd_00_01.mp4'])


DEMO_ENV = {'POSEPILE_DEMO_FRAMES': '20', 'POSEPILE_WORKERS': '1'}


@pytest.fixture(scope='module')
def demo_release(tmp_path_factory):
    """The demo's raw release (20 frames), generated once; tests copy it."""
    root = tmp_path_factory.mktemp('demo_release')
    result = _demo_command(root, 'generate', '--seed', '0', '--n-frames', '20')
    assert result.returncode == 0, result.stderr[-2000:]
    return root


def _demo_command(root, *args):
    import os
    import subprocess
    import sys
    env = dict(os.environ, DATA_ROOT=str(root), OMP_NUM_THREADS='1', **DEMO_ENV)
    env.pop('POSEPILE_CACHE_DIR', None)
    return subprocess.run([sys.executable, '-m', 'posepile.ds.demo.main', *args], cwd=faults.REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def _demo_copy(demo_release, tmp_path):
    import shutil
    shutil.copytree(demo_release / 'demo', tmp_path / 'demo_root' / 'demo')
    return tmp_path / 'demo_root'


def test_demo_exits_on_a_truncated_video(demo_release, tmp_path):
    """The demo must fail with one line naming the video (it used to hang: the error could not cross the
    process pool), and that line must be the LAST one: the other shard's log came after it, and a leaked
    semaphore warning of the resource tracker (tqdm in spawned workers) in about a third of runs."""
    root = _demo_copy(demo_release, tmp_path)
    video = root / 'demo' / 'videos' / 'cam1.mp4'
    faults.truncate(0.5)(video)
    result = faults.run_recipe('demo', root, DEMO_ENV, timeout=600)
    faults.assert_one_line_failure(result, 'cam1.mp4')
    last = result.stderr.strip().splitlines()[-1]
    assert 'cam1.mp4' in last and last.startswith('python -m posepile.ds.demo.main: error:'), last
    assert '--skip-broken' in last and 'leaked' not in result.stderr
    assert json.loads((root / 'demo' / 'calibration.json').read_text())['n_frames'] == 20

    # the hint's option exists: the broken video is skipped, the shard's other video is built
    result = _demo_command(root, 'video', '--shard', '1/2', '--workers', '1', '--skip-broken')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'skipped' in result.stderr or 'broken' in result.stderr


def test_demo_poses_with_a_bad_crc(demo_release, tmp_path):
    """joints3d_mm.npz with its middle bytes replaced (the zip directory intact, the member's CRC wrong) used
    to end in a zipfile.BadZipFile traceback."""
    root = _demo_copy(demo_release, tmp_path)
    poses = root / 'demo' / 'joints3d_mm.npz'
    faults.corrupt(64, at=0.3)(poses)
    result = _demo_command(root, 'select-frames')
    faults.assert_one_line_failure(result, 'joints3d_mm.npz')
    last = result.stderr.strip().splitlines()[-1]
    assert str(poses) in last and 'damaged' in last, last
