"""MPI-INF-3DHP bad-input contract (issue 27): corrupted training annot.mat and test annot_data.mat files stop
the recipe with one line naming the file (instead of a build with joints 1e273 mm away or a reshape
traceback), a repaired file rebuilds byte-identically, and the frame selections follow their inputs."""
import shutil

import numpy as np
import pytest

from posepile.ds.tdhp import main as tdhp
from posepile.util.errors import InputError
from tests import faults
from tests.fakes import tdhp as fake

TRAIN_ONLY = {'TDHP_FULL': '0'}  # the 14-camera 3DHP-full pass adds nothing to these checks


def _train_release(data_root):
    fake.write_train_sequence(data_root / 'tdhp', n_frames=6, cameras=tdhp.TRAIN_CAMERAS, masks=False)


def _test_release(data_root):
    root = data_root / 'tdhp'
    fake.write_test_images(root, fake.write_fake_release(root, n_frames=(3, 1, 1, 1, 1, 2)))


def _edit_train_annot3(edit):
    """A fault that rewrites annot.mat with annot3 of camera 0 changed by edit(array (N, 84))."""
    def fault(path):
        import scipy.io
        content = scipy.io.loadmat(str(path))
        cells = content['annot3']
        cells[0, 0] = edit(np.array(cells[0, 0], np.float64))
        scipy.io.savemat(str(path), {k: v for k, v in content.items() if not k.startswith('__')})
    fault.__name__ = edit.__name__
    return fault


def huge_value(annot3):
    annot3[2, 7] = 2e273
    return annot3


def in_metres(annot3):
    return annot3 / 1000


def _edit_test_mat(edit):
    """A fault that rewrites a test annot_data.mat (v7.3) with its arrays changed by edit(dict)."""
    def fault(path):
        import h5py
        with h5py.File(path, 'r') as f:
            arrays = {key: np.asarray(f[key]) for key in f.keys()}
        path.unlink()
        fake._write_v73_mat(path, edit(arrays))
    fault.__name__ = edit.__name__
    return fault


def coordinate_garbage(arrays):
    arrays['annot3'][0, 0, 3, 1] = 3.65e36  # frame 0 is valid in the fake
    return arrays


def sixteen_joints(arrays):
    return {k: (v[:, :, :16] if k in ('annot2', 'annot3', 'univ_annot3') else v) for k, v in arrays.items()}


def test_corrupt_training_annotations_fail_with_the_file_named(tmp_path):
    reference = None
    for fault in (faults.corrupt(64),):  # random bytes in the float data: values like 2e273 mm (issue 27)
        reference = faults.check_fault_is_reported_and_repaired(
            'tdhp', _train_release, 'tdhp/S1/Seq1/annot.mat', fault, tmp_path, reference=reference,
            env_extra=TRAIN_ONLY)
    assert any(k.startswith('tdhp_downscaled/S1/') for k in reference)


def test_corrupt_test_annotations_fail_with_the_file_named(tmp_path):
    reference = None
    for fault in (_edit_test_mat(coordinate_garbage), _edit_test_mat(sixteen_joints)):
        reference = faults.check_fault_is_reported_and_repaired(
            'tdhp', _test_release, 'tdhp/TS1/annot_data.mat', fault, tmp_path, reference=reference)
    assert sum(k.startswith('tdhp_downscaled/TS') for k in reference) > 5


@pytest.mark.parametrize('fault', [huge_value, in_metres])
def test_annotation_checks_name_the_file(tmp_path, fault):
    _train_release(tmp_path)
    path = tmp_path / 'tdhp' / 'S1' / 'Seq1' / 'annot.mat'
    _edit_train_annot3(fault)(path)
    with pytest.raises(InputError, match='annot.mat'):
        tdhp.load_train_annotations(path)


def test_selections_are_redone_when_annotations_change(tmp_path):
    """selection.json and selection_full.json carry a fingerprint of annot.mat and camera.calibration: a
    changed (e.g. repaired) file is selected again instead of reusing the old selection."""
    _train_release(tmp_path)
    path = tmp_path / 'tdhp' / 'S1' / 'Seq1' / 'annot.mat'
    backup = tmp_path / 'annot.mat.backup'
    shutil.copy2(path, backup)
    first, first_full = tdhp.select_frames_stage(tmp_path), tdhp.full_selection(tmp_path)
    assert any(len(v) > 1 for v in first.values())

    def standing_still(annot3):  # a plausible but different file: the person never moves
        return np.repeat(annot3[:1], len(annot3), axis=0)
    import scipy.io
    content = scipy.io.loadmat(str(path))
    for c in range(14):
        content['annot3'][c, 0] = standing_still(np.array(content['annot3'][c, 0], np.float64))
    scipy.io.savemat(str(path), {k: v for k, v in content.items() if not k.startswith('__')})
    changed, changed_full = tdhp.select_frames_stage(tmp_path), tdhp.full_selection(tmp_path)
    assert all(len(v) <= 1 for v in changed.values()) and all(len(v) <= 1 for v in changed_full.values())
    shutil.copy(backup, path)  # the repair
    assert tdhp.select_frames_stage(tmp_path) == first and tdhp.full_selection(tmp_path) == first_full
