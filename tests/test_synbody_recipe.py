import io
import zipfile

import numpy as np

from tests.fakes import synbody as fake
from tests.markers import dot_errors
from tests.test_genebody_recipe import run_recipe
from tests.toy_bodymodels import PARENTS


def expected_views(release):
    """The original's rules re-stated: per sequence the sampler (100 mm, buffer 100) on the world SMPL joints (mm)
    of every frame of the fit, then every camera whose mask file exists and is not empty."""
    from posepile.util.sampling import select_frames
    kept = []
    for seq in fake.SEQUENCES:
        frames = [f for f in release['frames'] if f['seq'] == seq]
        chosen = {frames[i]['index'] for i in select_frames(np.stack([f['joints_m'] * 1000 for f in frames]), 100,
                                                             buffer_size=100, check_validity=True,
                                                             nan_unchanged=True)}
        kept += [v for v in release['images'] if v['seq'] == seq and v['index'] in chosen and v['kept_view']]
    return kept


def test_synbody_recipe_on_fake_release(data_root):
    from posepile import bodymodels
    from posepile.storage.annotations import load_dataset
    from posepile.util import masks
    release = fake.write_fake_release(data_root)
    result = run_recipe(data_root, 'synbody')
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list((data_root / fake.RELEASE).glob('0*'))  # nothing extracted: read in place from the zips
    assert '1 selected views have no mask' in result.stderr  # camera01 of 000/0003, skipped as the original
    dataset = load_dataset(data_root / 'cache' / 'synbody.posepile')
    kept = expected_views(release)
    # 000: 4 frames -> 3 (the 0.0005 rad change is not kept) x 3 cameras - 1 missing mask - 1 empty mask = 7;
    # 001: 2 frames x 2 cameras = 4
    assert len(kept) == 11
    examples = dataset.examples[0]
    assert sorted(ex.image_path for ex in examples) == sorted(
        f'synbody_humannerf_downscaled/{v["seq"]}/img/{v["camera"]:02d}/{v["index"]:04d}.jpg' for v in kept)
    assert not dataset.examples[1] and not dataset.examples[2] and dataset.joint_info.n_joints == 0

    frames = {(f['seq'], f['index']): f for f in release['frames']}
    views = {(v['seq'], v['camera'], v['index']): v for v in release['images']}
    errors, fk_errors, camera_errors, centre_errors = [], [], [], []
    for example in examples:
        _, seq, _, camera_dir, name = example.image_path.split('/')
        truth, view = frames[(seq, int(name[:4]))], views[(seq, int(camera_dir), int(name[:4]))]
        params = example.parameters
        assert example.world_coords is None
        assert params['type'] == 'smpl' and params['gender'] == truth['gender'] and len(params['pose']) == 72
        np.testing.assert_allclose(params['shape'], truth['fit']['betas'], atol=1e-6)  # per-frame or one row
        np.testing.assert_allclose(params['trans'], truth['fit']['trans'], atol=1e-6)
        # the camera: optical centre -R^T T (T x 1000 -> mm), unchanged by cropping
        R, T, _ = release['cameras'][(seq, int(camera_dir))]
        centre_errors.append(np.abs(example.camera.t - (-R.T @ T) * 1000).max())
        K = example.camera.intrinsic_matrix
        # world parameters -> the example's camera (rototranslate) -> toy-model forward kinematics (the fake's,
        # independent of posepile.bodymodels) -> pinhole projection = the dots drawn in the crop
        model = bodymodels.load('smpl', params['gender'], data_root / 'body_models')
        in_camera = bodymodels.rototranslate(params, example.camera.R, example.camera.t / 1000, model=model)
        joints_cam = fake.forward_kinematics(release['models'][truth['gender']], PARENTS['smpl'], in_camera['pose'],
                                             in_camera['shape'], in_camera['trans']) * 1000
        fk_errors.append(np.abs(joints_cam - example.camera.world_to_camera(truth['joints_m'] * 1000)).max())
        pixels = joints_cam[:, :2] / joints_cam[:, 2:] * np.diag(K)[:2] + K[:2, 2]
        camera_errors.append(np.abs(pixels - example.camera.world_to_image(truth['joints_m'] * 1000)).max())
        drawn = np.all((view['pixels'] >= 13) & (view['pixels'] < [fake.WIDTH - 13, fake.HEIGHT - 13]), axis=1)
        errors += dot_errors(data_root / example.image_path, np.where(drawn[:, None], pixels, np.nan),
                             max(3, int(round(2 * K[0, 0] / fake.FOCAL_PX))), neighbours=pixels)
        # box and mask from the shipped mask (the joints' box + 4 px in the raw image)
        mask = masks.decode(example.mask)
        points = np.round(pixels).astype(int)
        inside = np.all((points >= 0) & (points < [mask.shape[1], mask.shape[0]]), axis=1)
        assert inside.sum() > 12 and np.mean(mask[points[inside, 1], points[inside, 0]]) > 0.95
    assert max(centre_errors) < 0.01, max(centre_errors)  # mm
    assert max(camera_errors) < 0.05, max(camera_errors)  # px
    assert max(fk_errors) < 0.05, max(fk_errors)  # mm
    assert len(errors) > 3 * len(examples), len(errors)
    assert np.median(errors) < 0.5 and np.max(errors) < 1.5, (np.median(errors), np.max(errors))


def test_missing_camera_key_is_one_line(data_root):
    fake.write_fake_release(data_root)
    path = data_root / fake.RELEASE / 'camera_params.zip'
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('000/camera.json', '{"camera00": {"K": [[700, 0, 320], [0, 700, 320], [0, 0, 1]], '
                                      '"R": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}}')
        z.writestr('001/camera.json', '{}')
    result = run_recipe(data_root, 'synbody')
    assert result.returncode != 0
    line = result.stderr.strip().splitlines()[-1]
    assert 'camera_params.zip::000/camera.json: camera00 lacks T' in line, line
    assert 'Traceback' not in result.stderr


def test_missing_fit_key_is_one_line(data_root):
    fake.write_fake_release(data_root)
    path = data_root / fake.RELEASE / 'smpl.zip'
    buffer = io.BytesIO()
    np.savez(buffer, smpl={'global_orient': np.zeros((2, 3)), 'body_pose': np.zeros((2, 69)),
                           'transl': np.zeros((2, 3))}, meta={'gender': 'female'})
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('000/smpl_refit.npz', buffer.getvalue())
    result = run_recipe(data_root, 'synbody')
    assert result.returncode != 0
    line = result.stderr.strip().splitlines()[-1]
    assert 'smpl.zip::000/smpl_refit.npz: "smpl" lacks betas' in line, line
    assert 'Traceback' not in result.stderr


def test_members_under_a_top_folder_and_colour_masks_give_the_same_tasks(data_root):
    """The readers accept each zip's members under one extra folder (as an extraction into camera_params/,
    smplx/, ... suggests) and 3-channel masks: the same views are selected."""
    import cv2

    from posepile.ds.synbody import main as synbody
    release = fake.write_fake_release(data_root)
    reference = sorted(key for key, _, _ in synbody.make_crop_tasks(data_root))
    for name in ('camera_params.zip', 'smpl.zip', 'mask.zip', 'img.zip'):
        path = data_root / fake.RELEASE / name
        with zipfile.ZipFile(path) as z:
            members = {m: z.read(m) for m in z.namelist()}
        with zipfile.ZipFile(path, 'w') as z:
            for member, data in members.items():
                if name == 'mask.zip':
                    mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
                    data = cv2.imencode('.png', np.stack([mask * 0, mask, mask * 0], axis=2))[1].tobytes()
                z.writestr(f'{name[:-4]}/{member}', data)
    tasks = synbody.make_crop_tasks(data_root)
    assert sorted(key for key, _, _ in tasks) == reference and len(reference) == len(expected_views(release))
    assert all(example.image_path.startswith('synbody/HumanNeRF-subset/img.zip::img/') for _, example, _ in tasks)
