import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import humbi as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent
# Independent of the recipe: SMPL's joints in model order, OpenPose BODY_25 in file order.
SMPL_MODEL_ORDER = ('pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,'
                    'lelb,relb,lwri,rwri,lhan,rhan').split(',')
OPENPOSE_FILE_ORDER = ('nose,neck,rsho,relb,rwri,lsho,lelb,lwri,pelv,rhip,rkne,rank,lhip,lkne,lank,reye,leye,'
                       'rear,lear,lfoo,ltoe,lhee,rfoo,rtoe,rhee').split(',')


def expected_images(release):
    """Images the selection keeps: readable, calibrated, some joint projecting into the 1920x1080 image."""
    kept = []
    for image in release['images']:
        u, v = image['pixels'].T
        in_view = np.any((u >= 0) & (u < fake.WIDTH) & (v >= 0) & (v < fake.HEIGHT))
        if image['calibrated'] and not image['broken'] and in_view:
            kept.append(image)
    return kept


def run_recipe(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    env.pop('POSEPILE_DETECTOR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/humbi/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_joint_names_follow_the_original_ordering():
    from posepile.ds.humbi import main as humbi
    smpl = [SMPL_MODEL_ORDER[i] for i in [*range(1, 24), 0]]
    openpose = [OPENPOSE_FILE_ORDER[i] + '_coco' for i in [*range(8), *range(9, 25), 8]]
    assert humbi.JOINT_NAMES.split(',') == smpl + openpose
    from posepile.joint_info import JointInfo
    assert JointInfo(humbi.JOINT_NAMES, humbi.JOINT_EDGES).n_joints == 49


def test_humbi_recipe_on_fake_release(data_root):
    release = fake.write_fake_release(data_root)
    result = run_recipe(data_root)
    from posepile.ds.humbi import main as humbi
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'humbi.posepile')
    examples = dataset.examples[0]
    kept = expected_images(release)
    assert len(release['images']) == 12 and len(kept) == 8
    assert len(examples) == len(kept) and not dataset.examples[1] and not dataset.examples[2]
    assert sorted(ex.image_path for ex in examples) == sorted(
        i['relpath'].replace('humbi/', 'humbi_downscaled/', 1) for i in kept)

    # the broken JPEG is skipped and reported, not fatal
    assert fake.BROKEN_IMAGE in result.stderr
    assert not any(fake.BROKEN_IMAGE.split('/', 1)[1] in ex.image_path for ex in examples)

    names = humbi.JOINT_NAMES.split(',')
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from tests.toy_bodymodels import other_camera, roundtrip_errors_mm
    model = bodymodels.load('smpl', 'neutral', data_root / 'body_models')
    errors, param_errors = [], []
    for example in examples:
        body, snapshot = example.image_path.replace('humbi_downscaled/', 'humbi/', 1).split('/image/')[0].rsplit('/', 1)
        truth = release['snapshots'][(body, snapshot)]
        # mm, and every joint at its name
        for j, name in enumerate(OPENPOSE_FILE_ORDER):
            np.testing.assert_allclose(example.world_coords[names.index(name + '_coco')],
                                       truth['keypoints_m'][j] * 1000, atol=0.01)
        for j, name in enumerate(SMPL_MODEL_ORDER):
            np.testing.assert_allclose(example.world_coords[names.index(name)], truth['smpl_joints_m'][j] * 1000,
                                       atol=0.01)
        # the SMPL fit travels with the example in the world frame with its scale, in NLF's convention
        # (X = scale * SMPL(pose, shape, trans), so trans = HUMBI's T / scale): its joints are the fit's world joints;
        # rototranslated into the example's (crop) camera or any other, the joints seen by that camera (< 0.1 mm)
        parameters = example.parameters
        assert parameters['type'] == 'smpl' and parameters['gender'] == 'neutral'
        assert parameters['scale'] == pytest.approx(truth['smpl']['scale'], abs=1e-7)
        for key in ('shape', 'pose'):
            np.testing.assert_allclose(np.asarray(parameters[key]), truth['smpl'][key], atol=1e-6)
        np.testing.assert_allclose(parameters['trans'], np.asarray(truth['smpl']['trans']) / truth['smpl']['scale'],
                                   atol=1e-6)
        world = truth['smpl_joints_m'] * 1000
        assert np.abs(parameter_joints_mm(parameters, model) - world).max() < 0.1
        param_errors += roundtrip_errors_mm(parameters, world, [example.camera, other_camera(len(param_errors))],
                                            model)
        # box: the projected joints expanded ~1.05x
        projected = example.camera.world_to_image(example.world_coords)
        x, y, w, h = example.bbox
        assert np.all((projected >= [x, y]) & (projected <= [x + w, y + h]))
        extent = projected.max(0) - projected.min(0)
        assert 1.0 < w / extent[0] < 1.12 and 1.0 < h / extent[1] < 1.12, (example.bbox, extent)
        # dots in the crop at the projected joints
        radius = max(3, int(round(5 * example.camera.intrinsic_matrix[0, 0] / 1000)))
        errors += dot_errors(data_root / example.image_path, projected, radius)
    assert len(errors) > 8 * 30
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
    assert len(param_errors) == 16 and max(param_errors) < 0.1, max(param_errors)
    print('humbi round-trip max error (mm):', max(param_errors))


def test_without_the_smpl_model_joints_are_nan_and_no_parameters_are_kept(data_root):
    from posepile.ds.humbi import main as humbi
    fake.write_fake_release(data_root)
    (data_root / fake.SMPL_MODEL_RELPATH).unlink()
    tasks = humbi.make_crop_tasks(data_root)
    assert tasks and all(example.parameters is None for _, example, _ in tasks)
    assert all(np.isnan(example.world_coords[:24]).all() and np.isfinite(example.world_coords[24:]).all()
               for _, example, _ in tasks)


def test_load_cameras_project_keypoints_onto_the_dots(tmp_path):
    from posepile.ds.humbi.main import load_cameras
    release = fake.write_fake_release(tmp_path)
    for body, cameras in release['cameras'].items():
        loaded = load_cameras(tmp_path / body / 'intrinsic.txt', tmp_path / body / 'extrinsic.txt')
        assert sorted(loaded) == sorted(cameras)
        assert all(np.allclose(c.world_up, [0, -1, 0]) for c in loaded.values())
    for image in release['images']:
        if not image['calibrated']:
            continue
        truth = release['snapshots'][(image['body'], image['snapshot'])]
        world_mm = np.concatenate([truth['keypoints_m'], truth['smpl_joints_m']]) * 1000
        camera = load_cameras(tmp_path / image['body'] / 'intrinsic.txt',
                              tmp_path / image['body'] / 'extrinsic.txt')[image['camera_id']]
        np.testing.assert_allclose(camera.world_to_image(world_mm), image['pixels'], atol=1e-4)


@pytest.mark.parametrize('which, corrupt', [
    ('extrinsic', lambda lines: lines[:6] + [lines[6].rsplit(' ', 1)[0]] + lines[7:]),  # a rotation row of 2
    ('extrinsic', lambda lines: lines[:5] + ['0.1 0.2 zero'] + lines[6:]),  # a non-numeric centre
    ('intrinsic', lambda lines: lines[:-1]),  # a truncated block
])
def test_malformed_calibration_gives_one_line_error_naming_the_file(tmp_path, which, corrupt):
    from posepile.ds.humbi.main import HUMBIFormatError, load_cameras
    fake.write_fake_release(tmp_path)
    body = tmp_path / 'humbi' / 'subject_1' / 'body'
    path = body / f'{which}.txt'
    path.write_text('\n'.join(corrupt(path.read_text().splitlines())) + '\n')
    with pytest.raises(HUMBIFormatError) as info:
        load_cameras(body / 'intrinsic.txt', body / 'extrinsic.txt')
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert str(path) in message and '\n' not in message, message


def test_malformed_reconstruction_files(tmp_path):
    from posepile.ds.humbi.main import HUMBIFormatError, load_keypoints, load_smpl_parameters
    fake.write_fake_release(tmp_path)
    reconstruction = tmp_path / 'humbi' / 'subject_1' / 'body' / '00000001' / 'reconstruction'
    params = load_smpl_parameters(reconstruction / 'smpl_parameter.txt')
    assert params['pose'].shape == (72,) and params['shape'].shape == (10,) and params['trans'].shape == (3,)
    path = reconstruction / 'keypoints.txt'
    path.write_text('\n'.join(path.read_text().splitlines()[:-1]))
    with pytest.raises(HUMBIFormatError, match='keypoints.txt: 72 numbers, expected 25 x 3'):
        load_keypoints(path)


def test_box_rule_hull_with_best_detection_when_iou_above_half():
    from posepile.ds.humbi.main import person_box
    from posepile.util import boxes
    pixels = np.array([[1000.0, 300.0], [1200.0, 700.0]])
    joint_box = boxes.expand(boxes.bb_of_points(pixels), 1.05)
    np.testing.assert_allclose(person_box(pixels), joint_box, atol=1e-3)
    wider = np.array([joint_box[0] - 60, joint_box[1], joint_box[2] + 60, joint_box[3], 0.9])  # IoU ~0.78
    np.testing.assert_allclose(person_box(pixels, wider[np.newaxis]), wider[:4], atol=1e-3)
    far = np.array([[100.0, 100.0, 200.0, 400.0, 0.99]])  # no overlap: the joint box stays
    np.testing.assert_allclose(person_box(pixels, far), joint_box, atol=1e-3)
    # clipped to the 1920x1080 image
    clipped = person_box(pixels + [800, 0])
    assert clipped[0] + clipped[2] == pytest.approx(1920)


def test_detections_change_the_crop_task_boxes(data_root):
    from posepile.ds.humbi import main as humbi
    from posepile.util import fileio
    fake.write_fake_release(data_root)
    plain = {key: example.bbox for key, example, _ in humbi.make_crop_tasks(data_root)}
    key = sorted(plain)[0]
    x, y, w, h = plain[key]
    detection = np.array([[x - 40, y - 30, w + 40, h + 30, 0.8]], np.float32)
    fileio.save_pickle({key: detection}, humbi.work_dir(data_root) / 'detections.pkl')
    with_detections = {k: example.bbox for k, example, _ in humbi.make_crop_tasks(data_root)}
    np.testing.assert_allclose(with_detections[key], detection[0, :4], atol=1e-3)
    assert all(np.allclose(with_detections[k], plain[k]) for k in plain if k != key)
