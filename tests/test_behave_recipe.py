import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import behave as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent
# Independent of the recipe: SMPL's joints in model order, OpenPose BODY_25 in file order (the original's names).
SMPL_MODEL_ORDER = ('pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,'
                    'lelb,relb,lwri,rwri,lhan,rhan').split(',')
OPENPOSE_FILE_ORDER = ('nose,neck,rsho,relb,rwri,lsho,lelb,lwri,pelv,rhip,rkne,rank,lhip,lkne,lank,reye,leye,'
                       'rear,lear,lfoo,ltoe,lhee,rfoo,rtoe,rhee').split(',')


def expected_images(release):
    """Per split, the images the recipe keeps: frames chosen by the original's sampler (100 mm, buffer 100, per
    sequence, on the 49 joints in mm) x Kinects that see the person."""
    from posepile.util.sampling import select_frames
    kept = {'train': [], 'test': []}
    for seq in fake.SEQUENCES:
        frames = [f for f in release['frames'] if f['seq'] == seq]
        poses = np.stack([np.concatenate([f['smpl_joints_m'], f['openpose_m']]) * 1000 for f in frames])
        chosen = {frames[i]['frame'] for i in select_frames(poses, 100, buffer_size=100, check_validity=True,
                                                             nan_unchanged=True)}
        split = frames[0]['split']
        kept[split] += [i for i in release['images'] if i['seq'] == seq and i['frame'] in chosen and i['in_view']]
    return kept


def run_recipe(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    env.pop('POSEPILE_DETECTOR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/behave/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_joint_names_follow_the_original_ordering():
    from posepile.ds.behave import main as behave
    from posepile.joint_info import JointInfo
    smpl = [SMPL_MODEL_ORDER[i] for i in [*range(1, 24), 0]]
    openpose = [OPENPOSE_FILE_ORDER[i] + '_coco' for i in [*range(8), *range(9, 25), 8]]
    assert behave.JOINT_NAMES.split(',') == smpl + openpose
    assert JointInfo(behave.JOINT_NAMES, behave.JOINT_EDGES).n_joints == 49


def test_behave_recipe_on_fake_release(data_root):
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.ds.behave import main as behave
    from tests.toy_bodymodels import other_camera, roundtrip_errors_mm
    from posepile.storage.annotations import load_dataset
    from posepile.util import masks
    release = fake.write_fake_release(data_root)
    run_recipe(data_root)
    dataset = load_dataset(data_root / 'cache' / 'behave.posepile')
    kept = expected_images(release)
    # 5 frames -> P0, P1, P2 kept (the 1 mm change and the return to P0 are not); 2 frames x 3 Kinects in view
    assert (len(kept['train']), len(kept['test'])) == (3 * 4, 2 * 3)
    for split, index in (('train', 0), ('test', 2)):
        assert sorted(ex.image_path for ex in dataset.examples[index]) == sorted(
            i['relpath'].replace('behave/', 'behave_downscaled/', 1) for i in kept[split])
    assert not dataset.examples[1]

    names = behave.JOINT_NAMES.split(',')
    frames = {(f['seq'], f['frame']): f for f in release['frames']}
    smplh = {g: bodymodels.load('smplh', g, data_root / 'body_models') for g in ('male', 'female')}
    errors, param_errors = [], []
    for example in [*dataset.examples[0], *dataset.examples[2]]:
        _, _, seq, frame, _ = example.image_path.split('/')
        truth = frames[(seq, frame)]
        for j, name in enumerate(OPENPOSE_FILE_ORDER):  # mm, every joint at its name
            np.testing.assert_allclose(example.world_coords[names.index(name + '_coco')], truth['openpose_m'][j] * 1000,
                                       atol=0.02)
        for j, name in enumerate(SMPL_MODEL_ORDER):
            np.testing.assert_allclose(example.world_coords[names.index(name)], truth['smpl_joints_m'][j] * 1000,
                                       atol=0.05)
        # the SMPL+H fit as released, in the world frame: its joints are the world joints; rototranslated into the
        # example's (crop) camera or any other, the world joints seen by that camera (< 0.1 mm)
        params = example.parameters
        assert params['type'] == 'smplh' and params['gender'] == truth['gender'] and len(params['pose']) == 156
        for key, raw in (('shape', 'betas'), ('pose', 'pose'), ('trans', 'trans')):
            np.testing.assert_allclose(params[key], truth['fit'][raw], atol=1e-6)
        model, world = smplh[truth['gender']], truth['smplh_joints_m'] * 1000
        assert np.linalg.norm(parameter_joints_mm(params, model) - world, axis=-1).max() < 0.1
        param_errors += roundtrip_errors_mm(params, world, [example.camera, other_camera(len(param_errors))], model)
        # box: the projected joints expanded ~1.05x (clipped to the 2048x1536 raw image, so joints beyond its
        # border may lie outside)
        projected = example.camera.world_to_image(example.world_coords)
        x, y, w, h = example.bbox
        inside = np.all((projected >= [x - 3, y - 3]) & (projected <= [x + w + 3, y + h + 3]), axis=1)
        assert inside.mean() > 0.85 and w * h < 1.3 * np.prod(projected.max(0) - projected.min(0))
        # the shipped person mask (the joints' box + 3 px in the raw image) came along into the crop: it covers
        # the joints and is empty far from them
        mask = masks.decode(example.mask)
        inner = np.round(projected).astype(int)
        inside = np.all((inner >= 0) & (inner < [mask.shape[1], mask.shape[0]]), axis=1)
        assert inside.sum() > 20 and np.all(mask[inner[inside, 1], inner[inside, 0]])
        assert masks.area(example.mask) < 1.5 * np.prod(projected.max(0) - projected.min(0))
        image = [i for i in release['images'] if i['relpath'] == example.image_path.replace('_downscaled', '', 1)][0]
        raw = image['pixels'][[*range(1, 24), 0, *(24 + np.array([*range(8), *range(9, 25), 8]))]]
        drawn = np.all((raw >= 13) & (raw < [fake.WIDTH - 13, fake.HEIGHT - 13]), axis=1)  # dots 13+ px inside
        radius = max(3, int(round(2 * example.camera.intrinsic_matrix[0, 0] / fake.FOCAL_PX)))
        errors += dot_errors(data_root / example.image_path, np.where(drawn[:, None], projected, np.nan), radius)
    assert len(param_errors) == 2 * (len(dataset.examples[0]) + len(dataset.examples[2])) and max(param_errors) < 0.1
    print("behave round-trip max error (mm):", max(param_errors))
    assert len(errors) > 18 * 10
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_load_camera_uses_the_transposed_rotation_and_projects_onto_the_dots(tmp_path):
    from posepile.ds.behave.main import load_camera
    release = fake.write_fake_release(tmp_path)
    calibs = tmp_path / 'behave' / 'calibs'
    for image in release['images']:
        if not image['in_view']:
            continue
        date = fake.SEQUENCES[image['seq']]['date']
        camera = load_camera(calibs / 'intrinsics' / str(image['kinect']) / 'calibration.json',
                             calibs / date / 'config' / str(image['kinect']) / 'config.json')
        truth = [f for f in release['frames'] if (f['seq'], f['frame']) == (image['seq'], image['frame'])][0]
        world_mm = np.concatenate([truth['smpl_joints_m'], truth['openpose_m']]) * 1000
        np.testing.assert_allclose(camera.world_to_image(world_mm), image['pixels'], atol=1e-3)
        assert camera.distortion_coeffs is not None and len(camera.distortion_coeffs) == 8
        np.testing.assert_allclose(camera.world_up, [0, -1, 0])


@pytest.mark.parametrize('which, corrupt, message', [
    ('config', lambda d: dict(d, rotation=d['rotation'][:8]), 'rotation has 8 values'),
    ('config', lambda d: dict(d, rotation=[2 * v for v in d['rotation']]), 'not a rotation matrix'),
    ('intrinsics', lambda d: {'color': {k: v for k, v in d['color'].items() if k != 'k4'}}, 'lack k4'),
])
def test_malformed_calibration_gives_one_line_error_naming_the_file(tmp_path, which, corrupt, message):
    from posepile.ds.behave.main import BEHAVEFormatError, load_camera
    fake.write_fake_release(tmp_path)
    calibs = tmp_path / 'behave' / 'calibs'
    paths = {'intrinsics': calibs / 'intrinsics' / '1' / 'calibration.json',
             'config': calibs / 'Date01' / 'config' / '1' / 'config.json'}
    path = paths[which]
    path.write_text(json.dumps(corrupt(json.loads(path.read_text()))))
    with pytest.raises(BEHAVEFormatError, match=message) as info:
        load_camera(paths['intrinsics'], paths['config'])
    assert isinstance(info.value, ValueError) and str(path) in str(info.value) and '\n' not in str(info.value)


def test_malformed_joint_and_fit_files(tmp_path):
    from posepile.ds.behave.main import BEHAVEFormatError, load_fit, load_openpose_joints
    fake.write_fake_release(tmp_path)
    person = tmp_path / 'behave' / 'sequences' / 'Date01_Sub01_boxlarge_hand' / 't0000.000' / 'person'
    assert load_fit(person / 'fit02' / 'person_fit.pkl')['pose'].shape == (156,)
    path = person / 'person_J3d.json'
    data = json.loads(path.read_text())
    path.write_text(json.dumps(dict(data, body_joints3d=data['body_joints3d'][:-4])))
    with pytest.raises(BEHAVEFormatError, match=r'person_J3d.json: body_joints3d has 96 values'):
        load_openpose_joints(path)
    fit_path = person / 'fit02' / 'person_fit.pkl'
    fit_path.write_bytes(fit_path.read_bytes()[:40])
    with pytest.raises(BEHAVEFormatError, match='person_fit.pkl: cannot read the fit'):
        load_fit(fit_path)


def test_box_rule_replaces_by_the_best_detection_above_iou_half():
    from posepile.ds.behave.main import person_box
    from posepile.util import boxes
    pixels = np.array([[1000.0, 300.0], [1200.0, 700.0]])
    joint_box = boxes.expand(boxes.bb_of_points(pixels), 1.05)
    np.testing.assert_allclose(person_box(pixels), joint_box, atol=1e-3)
    near = np.array([[joint_box[0] + 10, joint_box[1] + 5, joint_box[2] - 30, joint_box[3], 0.9]])
    np.testing.assert_allclose(person_box(pixels, near), near[0, :4], atol=1e-3)
    far = np.array([[100.0, 100.0, 200.0, 400.0, 0.99]])
    np.testing.assert_allclose(person_box(pixels, far), joint_box, atol=1e-3)
    clipped = person_box(pixels + [900, 0])
    assert clipped[0] + clipped[2] == pytest.approx(2048)
