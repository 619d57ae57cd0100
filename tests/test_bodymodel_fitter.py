"""posepile.bodymodels.fitter on the toy body of tests/fakes/dfaust.py (the real SMPL tree, a person-shaped surface,
blended skinning, pose blend shapes): targets made by the model itself must be fitted exactly."""
import numpy as np
import pytest

from posepile import bodymodels
from posepile.bodymodels.fitter import fit_vertices, smplfitter_model_dir
from tests.fakes import dfaust as fake


@pytest.fixture(scope='module')
def body(tmp_path_factory):
    folder = tmp_path_factory.mktemp('fitter_models')
    fake.write_toy_body(folder, 'female', seed=3)
    model = bodymodels.load('smpl', 'female', folder)
    rng = np.random.default_rng(1)
    pose, betas, trans = fake.random_parameters(rng, 3)
    return model, pose, np.tile(betas, (3, 1)), trans


def _joints(model, pose, betas, trans, scale=1.0):
    return model(pose, betas, trans, return_vertices=False)['joints'] * np.reshape(scale, (-1, 1, 1))


def test_gauss_newton_recovers_the_generating_parameters(body):
    model, pose, betas, trans = body
    target = model(pose, betas, trans)['vertices']
    result = fit_vertices(model, target, n_betas=fake.N_SHAPE, n_iterations=3)
    assert result['vertex_error_m'].shape == (3, model.n_vertices)
    assert result['vertex_error_m'].max() < 5e-5  # 0.05 mm (float32 vertices)
    assert np.abs(_joints(model, result['pose'], result['betas'], result['trans'])
                  - _joints(model, pose, betas, trans)).max() < 5e-5
    np.testing.assert_allclose(result['betas'], betas, atol=2e-3)
    np.testing.assert_array_equal(result['scale'], 1)
    # one frame without the batch axis; fewer betas than the model has
    single = fit_vertices(model, target[0], n_betas=4, n_iterations=1)
    assert single['pose'].shape == (1, 72) and single['betas'].shape == (1, 4)
    assert single['vertex_error_m'].max() > 1e-4  # 4 of 16 betas cannot explain the shape exactly


def test_gauss_newton_fits_a_scale_and_a_vertex_subset(body):
    model, pose, betas, trans = body
    scale = np.array([0.8, 1.0, 1.25])
    target = model(pose, betas, trans)['vertices'] * scale[:, None, None]
    result = fit_vertices(model, target, n_betas=fake.N_SHAPE, n_iterations=3, fit_scale=True,
                          vertex_subset=np.arange(0, model.n_vertices, 2))
    np.testing.assert_allclose(result['scale'], scale, rtol=1e-4)
    assert result['vertex_error_m'].max() < 1e-4  # measured on all vertices, fitted on half
    assert np.abs(_joints(model, result['pose'], result['betas'], result['trans'], result['scale'])
                  - _joints(model, pose, betas, trans, scale)).max() < 1e-4


def test_fitter_refuses_a_mesh_of_another_topology(body):
    model = body[0]
    with pytest.raises(ValueError, match='expected'):
        fit_vertices(model, np.zeros((2, model.n_vertices - 1, 3)))
    with pytest.raises(ValueError, match='non-finite'):
        fit_vertices(model, np.full((model.n_vertices, 3), np.nan))
    with pytest.raises(ValueError, match='unknown fitter backend'):
        fit_vertices(model, np.zeros((model.n_vertices, 3)), backend='adam')


def test_smplfitter_reads_our_model_files_and_fits(body, tmp_path):
    smplfitter_np = pytest.importorskip('smplfitter.np', reason='optional: pip install smplfitter')
    model, pose, betas, trans = body
    smplfitter_model_dir(model, tmp_path)
    theirs = smplfitter_np.BodyModel('smpl', 'female', model_root=str(tmp_path), num_betas=fake.N_SHAPE)
    out = theirs(pose.astype(np.float32), betas.astype(np.float32), trans.astype(np.float32))
    ours = model(pose, betas, trans)
    assert np.abs(out['vertices'] - ours['vertices']).max() < 1e-5
    assert np.abs(out['joints'] - ours['joints']).max() < 1e-5
    result = fit_vertices(model, ours['vertices'], n_betas=fake.N_SHAPE, n_iterations=3, backend='smplfitter')
    # smplfitter's per-part Procrustes is approximate: centimetres on this toy, exact for ours (above)
    assert 1e-4 < result['vertex_error_m'].mean() < 0.05
