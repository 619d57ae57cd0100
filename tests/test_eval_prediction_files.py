"""Every benchmark's eval reads its predictions through posepile.eval.predictions (issue 27): a truncated
file or one with a bad CRC ends the command as ONE line naming the file (exit 1, no traceback), for each
eval module in posepile/ds/*/eval.py. The ground truth comes from each dataset's small fake release; the
predictions only need to be a damaged .npz (they are refused before any matching)."""
import importlib
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from posepile.eval.predictions import PredictionError, load_predictions, read_prediction_arrays
from posepile.util.errors import run_cli
from tests import faults
from tests.fakes import aspset as fake_aspset
from tests.fakes import h36m as fake_h36m
from tests.fakes import mupots as fake_mupots
from tests.fakes import tdhp as fake_tdhp
from tests.fakes import tdoh as fake_tdoh
from tests.fakes import tdpw as fake_tdpw

DS = Path(__file__).resolve().parent.parent / 'posepile' / 'ds'
EVALS = sorted(p.parent.name for p in DS.glob('*/eval.py'))

FAKE_RELEASES = {
    'aspset': lambda root: fake_aspset.write_fake_release(root / 'aspset'),
    'h36m': lambda root: fake_h36m.write_fake_release(root / 'h36m'),
    'mupots': lambda root: fake_mupots.write_fake_release(root / 'mupots'),
    'tdhp': lambda root: fake_tdhp.write_fake_release(root / 'tdhp'),
    'tdoh': lambda root: fake_tdoh.write_fake_release(root / 'tdoh'),
    'tdpw': lambda root: fake_tdpw.write_fake_release(root / 'tdpw'),
}


# Mesh and whole-body benchmarks: the smallest ground truth their own tests write (tests/test_eval_<name>.py),
# under DATA_ROOT; each returns the arguments the eval needs besides --pred-path.
def _ehf_release(root):
    """EHF: two NN_align.ply frames and the camera file (tests/test_eval_ehf.py). The eval reads the predictions
    before it loads the SMPL-X assets (writing and loading a 10475-vertex toy model takes ~10 s), so an empty
    assets folder is enough here."""
    from tests.test_eval_ehf import CAMERA_TXT, _fake_ehf
    (root / 'ehf').mkdir()
    _fake_ehf(root / 'ehf' / 'EHF', np.zeros((2, 10475, 3), np.float32), CAMERA_TXT)
    (root / 'body_models').mkdir()
    return ['--smplx-dir', str(root / 'body_models')]


def _emdb_release(root):
    """EMDB: one EMDB1 sequence's <subject>_<sequence>_data.pkl (the layout of tests/test_eval_emdb.py)."""
    import pickle

    from tests.toy_bodymodels import write_toy_model
    n = 3
    write_toy_model(root / 'body_models', 'smpl', 'male')
    data = {'n_frames': n, 'gender': 'male', 'emdb1': True, 'good_frames_mask': np.ones(n, bool),
            'smpl': {'poses_root': np.zeros((n, 3)), 'poses_body': np.zeros((n, 69)), 'betas': np.zeros(10),
                     'trans': np.zeros((n, 3))},
            'camera': {'extrinsics': np.tile(np.eye(4), (n, 1, 1)), 'intrinsics': np.eye(3)}}
    folder = root / 'emdb' / 'P0' / '09_outdoor_walk'
    folder.mkdir(parents=True)
    with open(folder / 'P0_09_outdoor_walk_data.pkl', 'wb') as f:
        pickle.dump(data, f)
    return ['--smpl-dir', str(root / 'body_models')]


def _h3wb_release(root):
    """H3WB: a 2D-to-3D test JSON of three samples (the official keypoints_3d layout, tests/test_eval_h3wb.py)."""
    from tests.test_eval_h3wb import _write
    (root / 'h3wb' / 'json').mkdir(parents=True)
    poses = np.random.default_rng(0).normal(0, 300, (3, 133, 3)) + [0, 0, 4000]
    _write(root / 'h3wb' / 'json' / '2Dto3D_test_3d.json', poses, range(3))
    return ['--task', '2d']


def _hbw_release(root):
    """HBW: the test list hbw_testset_image_names.npy (names as in tests/test_eval_hbw.py)."""
    from tests.test_eval_hbw import NAMES
    (root / 'hbw').mkdir()
    np.save(root / 'hbw' / 'hbw_testset_image_names.npy', np.array(NAMES))
    return ['--out', str(root / 'hbw_submission.npz'), '--model-type', 'smpl']


def _ssp3d_release(root):
    """SSP-3D: labels.npz of two images (the official keys, tests/test_eval_ssp3d.py) and toy SMPL models."""
    from tests.toy_bodymodels import write_toy_model
    for gender in ('female', 'male', 'neutral'):
        write_toy_model(root / 'body_models', 'smpl', gender)
    n = 2
    (root / 'ssp_3d').mkdir()
    np.savez(root / 'ssp_3d' / 'labels.npz', fnames=np.array(['0000.png', '0001.png']), shapes=np.zeros((n, 10)),
             poses=np.zeros((n, 72)), cam_trans=np.tile([0, 0, 12.0], (n, 1)), genders=np.array(['m', 'f']),
             joints2D=np.zeros((n, 17, 3)), bbox_centres=np.full((n, 2), 256.0), bbox_whs=np.full(n, 300.0))
    return ['--smpl-dir', str(root / 'body_models')]


RELEASES_WITH_ARGUMENTS = dict(ehf=_ehf_release, emdb=_emdb_release, h3wb=_h3wb_release, hbw=_hbw_release,
                               ssp3d=_ssp3d_release)
FAKE_RELEASES.update(RELEASES_WITH_ARGUMENTS)


def _write_predictions(path, compressed=False):
    """A well-formed predictions .npz (about 200 kB of coordinates) with every array an eval may ask for."""
    rng = np.random.default_rng(0)
    n = 1000
    arrays = dict(image_path=np.array([f'img_{i:05d}.jpg' for i in range(n)]),
                  person_index=np.zeros(n, np.int64),
                  coords2d_pred=rng.uniform(0, 1000, (n, 17, 2)),
                  coords3d_pred_cam=rng.uniform(-1000, 1000, (n, 17, 3)),
                  coords3d_pred_world=rng.uniform(-1000, 1000, (n, 17, 3)))
    (np.savez_compressed if compressed else np.savez)(path, **arrays)


def _demo_dataset(monkeypatch, module):
    """The demo eval reads the built demo dataset first; an empty stand-in is enough here."""
    from posepile.datasets3d import TEST
    from posepile.joint_info import JointInfo

    class Dataset:
        examples = {TEST: []}
        joint_info = JointInfo('a,b,c', 'a-b,b-c')
    monkeypatch.setattr(module, 'get_dataset', lambda name: Dataset())


def test_every_eval_reads_predictions_through_the_shared_module():
    """Static half of the contract, for every eval (also those without a fake here): prediction files are read by
    posepile.eval.predictions (load_predictions / read_prediction_arrays), never opened by the eval first."""
    for name in EVALS:
        source = (DS / name / 'eval.py').read_text()
        # posepile.eval.mesh_predictions (mesh benchmarks) re-exports read_prediction_arrays
        assert re.search(r'from posepile\.eval\.(mesh_)?predictions import \(?[^)]*?\b(load_predictions|'
                         r'read_prediction_arrays)\b', source), \
            f'{name}/eval.py does not read predictions through posepile.eval.predictions'
        assert not re.search(r'np\.load\([^)]*pred', source), f'{name}/eval.py opens a prediction file itself'


def _eval_cases():
    for name in EVALS:
        marks = [] if name in FAKE_RELEASES or name == 'demo' else [pytest.mark.xfail(
            strict=True, reason='no fake release declared for this eval yet: add it to FAKE_RELEASES')]
        yield pytest.param(name, id=name, marks=marks)


@pytest.mark.parametrize('fault', [faults.truncate(0.5), faults.corrupt(64, at=0.5)], ids=['truncated', 'bad_crc'])
@pytest.mark.parametrize('name', list(_eval_cases()))
def test_damaged_prediction_file_is_one_line_naming_it(name, fault, data_root, tmp_path, monkeypatch, capsys):
    module = importlib.import_module(f'posepile.ds.{name}.eval')
    if name == 'demo':
        _demo_dataset(monkeypatch, module)
    extra_args = []
    if name != 'demo':
        assert name in FAKE_RELEASES, f'{name}: declare its fake release'
        written = FAKE_RELEASES[name](data_root)
        extra_args = written if name in RELEASES_WITH_ARGUMENTS else []
    path = tmp_path / 'predictions.npz'
    _write_predictions(path)
    fault(path)
    status = run_cli(module.main, ['--pred-path', str(path), *extra_args], prog=f'{name} eval')
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 1, err
    assert 'Traceback' not in err
    assert str(path) in lines[-1] and ('damaged' in lines[-1] or 'truncated' in lines[-1]), lines[-1]


def test_reader_refuses_bad_crc_and_damaged_compressed_data(tmp_path):
    plain, packed = tmp_path / 'plain.npz', tmp_path / 'packed.npz'
    _write_predictions(plain)
    _write_predictions(packed, compressed=True)
    # same size, middle bytes replaced: the zip directory is intact, the member's CRC (or deflate) is not
    for path in (plain, packed):
        size = path.stat().st_size
        faults.corrupt(64, at=0.5)(path)
        assert path.stat().st_size == size and zipfile.is_zipfile(path)
        with pytest.raises(PredictionError, match='damaged') as info:
            read_prediction_arrays(path)
        assert str(path) in str(info.value)
        with pytest.raises(PredictionError, match='damaged'):
            load_predictions(path, ['img_00000.jpg'], 17)


def test_reader_reads_every_array_and_refuses_pickles(tmp_path):
    path = tmp_path / 'p.npz'
    _write_predictions(path)
    arrays = read_prediction_arrays(path)
    assert sorted(arrays) == ['coords2d_pred', 'coords3d_pred_cam', 'coords3d_pred_world', 'image_path',
                              'person_index']
    assert arrays['coords3d_pred_cam'].shape == (1000, 17, 3)
    np.savez(tmp_path / 'objects.npz', image_path=np.array(['a', None], dtype=object))
    with pytest.raises(PredictionError, match='object'):
        read_prediction_arrays(tmp_path / 'objects.npz')


def test_official_3dpw_pickle_truncated_is_one_line(data_root, tmp_path, capsys):
    """3DPW's official res/<split>/<sequence>.pkl layout: a truncated pickle names the file."""
    import pickle

    from posepile.ds.tdpw import eval as tdpw_eval
    written = fake_tdpw.write_fake_release(data_root / 'tdpw')
    pickles = []
    for split, sequence in written:
        (tmp_path / 'res' / split).mkdir(parents=True, exist_ok=True)
        pickles.append(tmp_path / 'res' / split / f'{sequence}.pkl')
        with open(pickles[-1], 'wb') as f:
            pickle.dump({'jointPositions': np.random.default_rng(0).normal(0, 0.5, (2, 50, 24, 3))}, f, protocol=2)
        faults.truncate(0.5)(pickles[-1])
    status = run_cli(tdpw_eval.main, ['--pred-path', str(tmp_path)], prog='tdpw eval')
    err = capsys.readouterr().err
    assert status == 1 and 'Traceback' not in err
    last = err.strip().splitlines()[-1]
    assert 'not a readable predictions pickle' in last and any(str(p) in last for p in pickles), last
