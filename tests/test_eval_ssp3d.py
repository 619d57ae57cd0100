"""SSP-3D evaluator on a fake release in the official layout (labels.npz keys as SSP-3D's data/ssp3d_dataset.py reads
them, silhouettes/<fname> PNGs) with toy SMPL models; expected numbers re-derived here."""
import cv2
import numpy as np
import pytest

from posepile.ds.ssp3d import eval as ssp_eval
from posepile.eval import alignment, mesh_metrics
from posepile.eval.predictions import PredictionError
from tests.toy_bodymodels import write_toy_model

N_IMAGES = 4


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp('ssp_3d')
    model_dir = root / 'models'
    for gender in ('female', 'male', 'neutral'):
        write_toy_model(model_dir, 'smpl', gender, seed={'female': 1, 'male': 2, 'neutral': 3}[gender])
    rng = np.random.default_rng(0)
    fnames = np.array([f'{i:04d}.png' for i in range(N_IMAGES)])
    labels = dict(fnames=fnames, shapes=rng.normal(0, 1, (N_IMAGES, 10)), poses=rng.normal(0, 0.3, (N_IMAGES, 72)),
                  cam_trans=np.column_stack([rng.uniform(-0.1, 0.1, (N_IMAGES, 2)), np.full(N_IMAGES, 12.0)]),
                  genders=np.array(['m', 'f', 'f', 'm']), joints2D=np.zeros((N_IMAGES, 17, 3)),
                  bbox_centres=np.full((N_IMAGES, 2), 256.0), bbox_whs=np.full(N_IMAGES, 300.0))
    np.savez(root / 'labels.npz', **labels)
    models = ssp_eval.ModelCache(model_dir)
    parsed = ssp_eval.load_labels(root)
    posed = ssp_eval.ground_truth_posed_mm(parsed, models)
    (root / 'silhouettes').mkdir()
    faces = models('male').faces
    for fname, vertices in zip(fnames, posed):
        mask = mesh_metrics.rasterize_silhouette(ssp_eval.project(vertices), faces, 512, 512)
        cv2.imwrite(str(root / 'silhouettes' / fname), mask.astype(np.uint8) * 255)
    return root, model_dir, parsed, posed


def _run(tmp_path, release, **arrays):
    root, model_dir, labels, _ = release
    np.savez(tmp_path / 'p.npz', image_path=np.array([ssp_eval.image_relpath(f) for f in labels['fnames']]), **arrays)
    models = ssp_eval.ModelCache(model_dir)
    predictions = ssp_eval.load_npz_predictions(tmp_path / 'p.npz', labels, models, arrays.pop('_pred_gender', False))
    return ssp_eval.evaluate(labels, ssp_eval.ground_truth_tpose(labels, models), predictions, root,
                             models('male').faces)


def test_rms_scale_translation_alignment_by_hand():
    gt = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 2, 0], [0, -2, 0]])
    np.testing.assert_allclose(alignment.rms_scale_translation_align(3 * gt + [5, 6, 7], gt), gt, atol=1e-12)
    # a rotation is NOT removed: the 90-degree turned cross keeps its error
    turned = gt[:, [1, 0, 2]]
    np.testing.assert_allclose(alignment.rms_scale_translation_align(turned, gt), turned, atol=1e-12)


def test_gt_betas_score_zero_and_scaled_tpose_too(tmp_path, release):
    labels = release[2]
    assert _run(tmp_path, release, betas=labels['shapes'])['PVE-T-SC'] == pytest.approx(0, abs=1e-9)
    models = ssp_eval.ModelCache(release[1])
    gt_tpose = ssp_eval.ground_truth_tpose(labels, models)
    r = _run(tmp_path, release, vertices_tpose_pred=gt_tpose * 1.2 + [30.0, -500, 40])
    assert r['PVE-T-SC'] == pytest.approx(0, abs=1e-6)


def test_noisy_betas_match_the_restated_official_formula(tmp_path, release):
    root, model_dir, labels, _ = release
    from posepile import bodymodels
    pred_betas = labels['shapes'] + np.random.default_rng(1).normal(0, 0.5, labels['shapes'].shape)
    r = _run(tmp_path, release, betas=pred_betas, gender=np.array('neutral'))
    errors = []
    for i, gender in enumerate(labels['genders']):  # official: both through the GT's gendered model
        model = bodymodels.load('smpl', gender, model_dir)
        P = model(np.zeros((1, 72)), pred_betas[i:i + 1])['vertices'].astype(np.float64) * 1000
        T = model(np.zeros((1, 72)), labels['shapes'][i:i + 1])['vertices'].astype(np.float64) * 1000
        Pc = P - P.mean(1, keepdims=True)
        P_scaled = Pc / np.sqrt(np.sum(Pc ** 2) / P.shape[1]) * np.sqrt(np.sum((T - T.mean(1, keepdims=True)) ** 2)
                                                                     / T.shape[1]) + T.mean(1, keepdims=True)
        errors.append(np.linalg.norm(P_scaled - T, axis=-1))
    assert r['PVE-T-SC'] == pytest.approx(np.mean(errors), rel=1e-6)  # float32 vertices
    # --pred-gender: the file's neutral model instead, a different number
    models = ssp_eval.ModelCache(model_dir)
    predictions = ssp_eval.load_npz_predictions(tmp_path / 'p.npz', labels, models, use_pred_gender=True)
    other = ssp_eval.evaluate(labels, ssp_eval.ground_truth_tpose(labels, models), predictions)
    assert other['PVE-T-SC'] != pytest.approx(r['PVE-T-SC'], rel=1e-3)


def test_rasterizer_square_shift_by_hand():
    square = np.array([[50.0, 50], [149, 50], [149, 149], [50, 149]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    a = mesh_metrics.rasterize_silhouette(square, faces, 200, 200)
    b = mesh_metrics.rasterize_silhouette(square + [10, 0], faces, 200, 200)
    assert a.sum() == 100 * 100 and a[50:150, 50:150].all()
    tp, fp, fn = mesh_metrics.silhouette_counts(b, a)
    assert (tp, fp, fn) == (9000, 1000, 1000)
    assert mesh_metrics.iou_from_counts(tp, fp, fn) == pytest.approx(9000 / 11000)
    # overlapping triangles do not cancel out (cv2.fillPoly's even-odd rule would)
    overlap = mesh_metrics.rasterize_silhouette(np.array([[0.0, 0], [15, 0], [0, 15], [2, 2], [17, 2], [2, 17]]),
                                                np.array([[0, 1, 2], [3, 4, 5]]), 20, 20)
    assert overlap[5, 5]


def test_miou_pooled_by_default_and_per_image_mean_with_flag(tmp_path, release):
    root, model_dir, labels, posed = release
    r = _run(tmp_path, release, betas=labels['shapes'], vertices3d_pred_cam=posed)
    assert r['mIoU'] == pytest.approx(1.0)
    shifted = ssp_eval.project(posed)
    shifted[0] += [6, 0]  # one image off by 6 px
    r = _run(tmp_path, release, betas=labels['shapes'], vertices2d_pred=shifted)
    counts = []
    for v2d, fname in zip(shifted, labels['fnames']):
        pred = mesh_metrics.rasterize_silhouette(v2d, ssp_eval.ModelCache(model_dir)('male').faces, 512, 512)
        gt = cv2.imread(str(root / 'silhouettes' / fname), 0) > 0
        counts.append(((pred & gt).sum(), (pred & ~gt).sum(), (~pred & gt).sum()))
    counts = np.array(counts, float)
    pooled = counts[:, 0].sum() / counts.sum()
    per_image = np.mean(counts[:, 0] / counts.sum(axis=1))
    assert r['mIoU'] == pytest.approx(pooled, rel=1e-12) and r['mIoU'] < 1
    assert r['mIoU_per_image_mean'] == pytest.approx(per_image, rel=1e-12)
    assert pooled != pytest.approx(per_image, rel=1e-6)


def test_bad_files(tmp_path, release):
    labels = release[2]
    with pytest.raises(PredictionError, match=r'p.npz: "betas" must have shape'):
        _run(tmp_path, release, betas=labels['shapes'][:, :5])
    with pytest.raises(PredictionError, match='metres given'):
        _run(tmp_path, release, vertices_tpose_pred=ssp_eval.ground_truth_tpose(
            labels, ssp_eval.ModelCache(release[1])) / 1000)
    with pytest.raises(PredictionError, match='needs "betas" or "vertices_tpose_pred"'):
        _run(tmp_path, release, shape=labels['shapes'])
    root = tmp_path / 'empty'
    root.mkdir()
    with pytest.raises(ssp_eval.SSP3DFormatError, match='labels.npz: SSP-3D labels not found'):
        ssp_eval.load_labels(root)


def test_cli(tmp_path, release, capsys):
    root, model_dir, labels, posed = release
    np.savez(tmp_path / 'p.npz', image_path=labels['fnames'], betas=labels['shapes'], vertices3d_pred_cam=posed)
    r = ssp_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--ssp3d-root', str(root), '--smpl-dir',
                       str(model_dir), '--per-image-iou-mean'])
    out = capsys.readouterr().out
    assert 'SSP-3D: 4 images' in out and 'mean of per-image IoUs' in out
    assert r['mIoU'] == pytest.approx(1.0) and r['PVE-T-SC'] == pytest.approx(0, abs=1e-9)
