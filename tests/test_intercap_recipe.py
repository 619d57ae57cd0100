import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import intercap as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent
# the original's hard-coded intrinsics of cameras 4 and 5 (posepile/ds/intercap/main.py @46dc5f2, as measured in
# /work/shared/realdata/REFERENCE-nlf-era.md)
ORIGINAL_F_C = {4: ((909.820251, 909.624695), (957.618164, 554.602966)),
                5: ((920.533447, 920.097229), (958.461548, 550.429871))}


def run_recipe(data_root, script='intercap'):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    for key in ('POSEPILE_CACHE_DIR', 'POSEPILE_DETECTOR', 'POSEPILE_SEGMENTER'):
        env.pop(key, None)
    result = subprocess.run(['bash', str(REPO / f'posepile/ds/{script}/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def expected_images(release):
    """The raw images the recipe keeps: per capture, the frames the original's sampler (100 mm, buffer 100) keeps
    on the 55 joints in mm, x the cameras whose image exists."""
    from posepile.util.sampling import select_frames
    kept = []
    for capture in fake.CAPTURES:
        frames = [f for f in release['frames'] if f['capture'] == capture]
        chosen = select_frames(np.stack([f['joints_m'] * 1000 for f in frames]), 100, buffer_size=100,
                               check_validity=True, nan_unchanged=True)
        kept += [i for i in release['images'] if i['capture'] == capture and i['frame'] in set(chosen)]
    return kept


def test_calibration_set_rule():
    from posepile.ds.intercap.main import calibration_set
    assert calibration_set(1, 1) == 'first' and calibration_set(3, 7) == 'first'
    assert calibration_set(9, 1) == calibration_set(6, 9) == calibration_set(2, 10) == 'second'
    assert calibration_set(3, 8) == 'third' and calibration_set(5, 1) == 'third' and calibration_set(7, 7) == 'third'


def test_intercap_recipe_on_fake_release(data_root):
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.storage.annotations import load_dataset
    from posepile.util import masks
    from tests.toy_bodymodels import other_camera, roundtrip_errors_mm
    release = fake.write_fake_release(data_root)
    run_recipe(data_root)
    dataset = load_dataset(data_root / 'cache' / 'intercap.posepile')
    kept = expected_images(release)
    # 01: 4 frames -> 3 (the 1 mm change is not kept); 03 and 08: 2 each; x 6 cameras, one image missing
    assert len(kept) == (3 + 2 + 2) * 6 - 1
    assert sorted(ex.image_path for ex in dataset.examples[0]) == sorted(
        i['relpath'].replace('intercap/', 'intercap_downscaled/', 1) for i in kept)
    assert not dataset.examples[1] and not dataset.examples[2] and dataset.joint_info.n_joints == 0

    frames = {(f['capture'], f['frame']): f for f in release['frames']}
    images = {i['relpath']: i for i in release['images']}
    models = {g: bodymodels.load('smplx', g, data_root / 'body_models') for g in ('male', 'female')}
    errors, param_errors = [], []
    for example in dataset.examples[0]:
        assert example.world_coords is None or np.size(example.world_coords) == 0
        image = images[example.image_path.replace('_downscaled', '', 1)]
        truth = frames[(image['capture'], image['frame'])]
        params, model = example.parameters, models[truth['gender']]
        assert params['type'] == 'smplx' and params['gender'] == truth['gender']
        np.testing.assert_allclose(params['pose'], truth['pose'], atol=1e-5)  # PCA hands expanded + mean
        np.testing.assert_allclose(params['shape'], truth['fit']['betas'], atol=1e-6)
        np.testing.assert_allclose(params['trans'], truth['fit']['transl'], atol=1e-6)
        np.testing.assert_allclose(params['expression'], truth['fit']['expression'], atol=1e-6)
        world = truth['joints_m'] * 1000
        assert np.linalg.norm(parameter_joints_mm(params, model) - world, axis=-1).max() < 0.05
        param_errors += roundtrip_errors_mm(params, world, [example.camera, other_camera(len(param_errors))], model)
        # world parameters -> the example's (crop) camera -> forward kinematics -> projection: on the dots
        in_camera = bodymodels.rototranslate(params, example.camera.R, example.camera.t / 1000, model=model)
        projected = example.camera.camera_to_image(parameter_joints_mm(in_camera, model))
        drawn = np.all((image['pixels'] >= 13) & (image['pixels'] < [fake.WIDTH - 13, fake.HEIGHT - 13]), axis=1)
        radius = max(3, int(round(2 * example.camera.intrinsic_matrix[0, 0] / fake.FOCAL_PX)))
        errors += dot_errors(data_root / example.image_path, np.where(drawn[:, None], projected, np.nan), radius)
        # box: the projected joints' box x1.1 (no detector)
        x, y, w, h = example.bbox
        inside = np.all((projected >= [x - 3, y - 3]) & (projected <= [x + w + 3, y + h + 3]), axis=1)
        extent = projected.max(0) - projected.min(0)
        # the raw (distorted, strong Kinect terms) box reprojected into the undistorted crop camera; the rule
        # itself: test_detections_replace_the_box_or_drop_the_view
        assert inside.mean() > 0.85 and 0.6 < w * h / np.prod(1.1 * extent) < 1.2
        assert example.mask is not None and masks.area(example.mask) > 0
    assert max(param_errors) < 0.1
    assert len(errors) > 40 * 5
    assert np.median(errors) < 0.5 and np.percentile(errors, 95) < 1.0, (np.median(errors), np.max(errors))


def test_malformed_calibration_and_fits_give_one_line_errors(tmp_path):
    from posepile.ds.intercap.main import InterCapFormatError, load_camera, load_fits
    fake.write_fake_release(tmp_path)
    path = tmp_path / 'intercap' / 'Data' / 'calibration_first' / 'Color_2.json'
    data = json.loads(path.read_text())
    path.write_text(json.dumps(dict(data, k=data['k'][:5])))
    with pytest.raises(InterCapFormatError, match='"k" has 5 values') as info:
        load_camera(path)
    assert str(path) in str(info.value) and '\n' not in str(info.value)
    fit_path = tmp_path / 'intercap' / 'Res_Individuals' / '01' / '01' / 'Seg_0' / 'res_1.pkl'
    assert len(load_fits(fit_path)) == 4
    fit_path.write_bytes(fit_path.read_bytes()[:60])
    with pytest.raises(InterCapFormatError, match='res_1.pkl: cannot read the fits') as info:
        load_fits(fit_path)
    assert '\n' not in str(info.value)


def test_detections_replace_the_box_or_drop_the_view():
    from posepile.ds.intercap.main import person_box
    from posepile.util import boxes
    pixels = np.array([[800.0, 300.0], [1000.0, 800.0]])
    joint_box = boxes.expand(boxes.bb_of_points(pixels), 1.1)
    np.testing.assert_allclose(person_box(pixels), joint_box, atol=1e-3)
    near = np.array([[joint_box[0] + 10, joint_box[1], joint_box[2] - 30, joint_box[3], 0.9]])
    np.testing.assert_allclose(person_box(pixels, near), near[0, :4], atol=1e-3)
    assert person_box(pixels, np.array([[10.0, 10.0, 50.0, 50.0, 0.99]])) is None
    assert person_box(pixels, np.zeros((0, 5))) is None


@pytest.mark.realdata
def test_real_calibrations_read_and_differ_from_the_originals_cameras_4_and_5(realdata):
    """The three real calibration sets of the official toolkit: every camera loads; world = camera 1; `second`
    differs from `first` in cameras 2 and 3, `third` only in camera 3; the original's hard-coded intrinsics of
    cameras 4 and 5 are those of Color_5.json and Color_4.json respectively (swapped)."""
    from tests.conftest import realdata_file
    from posepile.ds.intercap.main import load_camera
    base = realdata_file(realdata, 'intercap/toolkit_Data/calibration_first/Color.json').parent.parent
    cameras = {}
    for which in ('first', 'second', 'third'):
        for i in range(1, 7):
            name = 'Color.json' if i == 1 else f'Color_{i}.json'
            cameras[which, i] = load_camera(base / f'calibration_{which}' / name)
            assert len(cameras[which, i].distortion_coeffs) == 8
        np.testing.assert_allclose(cameras[which, 1].R, np.eye(3), atol=1e-9)
        np.testing.assert_allclose(cameras[which, 1].t, 0, atol=1e-9)
    changed = {which: [i for i in range(1, 7) if not np.allclose(cameras[which, i].R, cameras['first', i].R)]
               for which in ('second', 'third')}
    assert changed == {'second': [2, 3], 'third': [3]}
    # Color_2 of the first set (REFERENCE-nlf-era.md): T = (2.10233038, -0.21855215, 0.92148124) m
    camera = cameras['first', 2]
    np.testing.assert_allclose(-camera.R @ camera.t / 1000, [2.10233038, -0.21855215, 0.92148124], atol=1e-7)
    for original_index, (focal, centre) in ORIGINAL_F_C.items():
        ours = cameras['first', original_index].intrinsic_matrix
        other = cameras['first', 9 - original_index].intrinsic_matrix  # 4 <-> 5
        assert not np.allclose([ours[0, 0], ours[1, 1]], focal, atol=0.01)
        np.testing.assert_allclose([other[0, 0], other[1, 1], other[0, 2], other[1, 2]], [*focal, *centre],
                                   atol=1e-4)
    difference = {i: np.abs(cameras['first', i].intrinsic_matrix[[0, 1, 0, 1], [0, 1, 2, 2]]
                            - np.array([*ORIGINAL_F_C[i][0], *ORIGINAL_F_C[i][1]])).max() for i in (4, 5)}
    print('intercap: |real - original| max over f, c of cameras 4 and 5 (px):', difference)
