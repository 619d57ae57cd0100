"""HBW submission writer: the real test image list, and the official format rules (keys, shapes, every name,
metres) on a short list (a full 1631 x 10475 submission is 200 MB, too big for a unit test)."""
import numpy as np
import pytest

from posepile.ds.hbw import eval as hbw
from posepile.eval.predictions import PredictionError
from tests.conftest import realdata_file
from tests.toy_bodymodels import write_toy_model


@pytest.mark.realdata
def test_real_test_list(realdata):
    names = hbw.read_image_names(realdata_file(realdata, 'hbw/toolkit/hbw_testset_image_names.npy'))
    assert len(names) == hbw.N_TEST_IMAGES == len(set(names))
    assert len({n.split('/')[1] for n in names}) == 25
    # 784 in-the-wild and 847 lab photos (REFERENCE-nlf-era.md's "all Pictures_in_the_Wild" is not so)
    folders = [n.split('/')[2] for n in names]
    assert all(n.startswith('test/') for n in names)
    assert (folders.count('Pictures_in_the_Wild'), folders.count('Photos_Lab')) == (784, 847)
    assert hbw.normalize_name('hbw/images/' + names[0]) == names[0]


NAMES = ['test/001_noLab_22/Pictures_in_the_Wild/01329.png', 'test/001_noLab_22/Pictures_in_the_Wild/01330.png',
         'test/035_84_20/Pictures_in_the_Wild/02570.png']


@pytest.fixture()
def names_file(tmp_path):
    np.save(tmp_path / 'names.npy', np.array(NAMES))
    return tmp_path / 'names.npy'


def test_write_from_tpose_vertices_in_list_order(tmp_path, names_file):
    rng = np.random.default_rng(0)
    vertices_mm = rng.normal(0, 400, (3, 6890, 3))
    order = [2, 0, 1]
    np.savez(tmp_path / 'p.npz', image_path=np.array(['hbw/images/' + NAMES[i] for i in order]),
             vertices_tpose_pred=vertices_mm[order])
    hbw.main(['--pred-path', str(tmp_path / 'p.npz'), '--out', str(tmp_path / 's.npz'), '--image-names',
              str(names_file), '--model-type', 'smpl'])
    with np.load(tmp_path / 's.npz') as s:
        assert sorted(s.keys()) == ['image_name', 'v_shaped']
        assert list(s['image_name']) == NAMES
        assert s['v_shaped'].dtype == np.float32 and s['v_shaped'].shape == (3, 6890, 3)
        np.testing.assert_allclose(s['v_shaped'], vertices_mm / 1000, rtol=1e-6)
    hbw.main(['--check', str(tmp_path / 's.npz'), '--image-names', str(names_file)])


def test_write_from_betas_uses_the_zero_pose(tmp_path, names_file):
    from posepile import bodymodels
    write_toy_model(tmp_path / 'models', 'smplx', 'neutral')
    betas = np.random.default_rng(1).normal(0, 1, (3, 10))
    np.savez(tmp_path / 'p.npz', image_path=np.array(NAMES), betas=betas)
    model = bodymodels.load('smplx', 'neutral', tmp_path / 'models')
    names, v_shaped = hbw.submission_arrays(tmp_path / 'p.npz', NAMES, 'smplx', tmp_path / 'models',
                                            n_vertices=model.n_vertices)
    expected = model.v_template + np.einsum('vcb,nb->nvc', np.asarray(
        np.load(tmp_path / 'models' / 'smplx' / 'SMPLX_NEUTRAL.npz')['shapedirs'])[..., :10], betas)
    np.testing.assert_allclose(v_shaped, expected, atol=1e-5)


def test_format_errors(tmp_path, names_file):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / 'short.npz', image_path=np.array(NAMES[:2]), vertices_tpose_pred=rng.normal(0, 400, (2, 6890, 3)))
    with pytest.raises(PredictionError, match=r'short.npz: 1 of 3 benchmark items have no prediction'):
        hbw.submission_arrays(tmp_path / 'short.npz', NAMES, 'smpl')
    np.savez(tmp_path / 'm.npz', image_path=np.array(NAMES), vertices_tpose_pred=rng.normal(0, 0.4, (3, 6890, 3)))
    with pytest.raises(PredictionError, match='metres given'):
        hbw.submission_arrays(tmp_path / 'm.npz', NAMES, 'smpl')
    np.savez(tmp_path / 'bad.npz', image_name=np.array(NAMES), v_shaped=rng.normal(0, 400, (3, 6890, 3)))
    with pytest.raises(PredictionError, match='implausible for a person in metres'):
        hbw.check_submission(tmp_path / 'bad.npz', NAMES)
    np.savez(tmp_path / 'keys.npz', names=np.array(NAMES), v_shaped=rng.normal(0, 0.4, (3, 6890, 3)))
    with pytest.raises(PredictionError, match=r'keys must be image_name and v_shaped'):
        hbw.check_submission(tmp_path / 'keys.npz', NAMES)
    np.savez(tmp_path / 'verts.npz', image_name=np.array(NAMES), v_shaped=rng.normal(0, 0.4, (3, 500, 3)))
    with pytest.raises(PredictionError, match=r'v_shaped has shape \(3, 500, 3\)'):
        hbw.check_submission(tmp_path / 'verts.npz', NAMES)
