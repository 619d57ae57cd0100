import numpy as np
import pytest

from tests.fakes import hi4d as fake
from tests.markers import dot_errors
from tests.test_intercap_recipe import run_recipe


def expected_views(release):
    """(frame, camera, person) the recipe keeps: a person with a non-empty mask whose box (the mask's pixel
    extent) holds >= 6 of its 24 projected joints, then per camera one sampler (100 mm, buffer 100) over the
    people in frame and person order."""
    from posepile.util.sampling import select_frames
    kept = []
    for camera in fake.CAMERA_IDS:
        candidates = []
        for image in sorted((i for i in release['images'] if i['camera'] == camera), key=lambda i: i['frame']):
            for person in (0, 1):
                box = image['mask_boxes'][person]
                if box is None:
                    continue
                x, y = image['pixels'][person].T
                inside = (x >= box[0]) & (x < box[2] + 1) & (y >= box[1]) & (y < box[3] + 1)
                if inside.sum() >= 6:
                    candidates.append((image['frame'], camera, person))
        poses = np.stack([release['frames'][f]['joints_m'][p] * 1000 for f, _, p in candidates])
        kept += [candidates[i] for i in select_frames(poses, 100, buffer_size=100, check_validity=True,
                                                       nan_unchanged=True)]
    return kept


def test_hi4d_recipe_on_fake_release(data_root):
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.storage.annotations import load_dataset
    from posepile.util import masks
    from tests.toy_bodymodels import other_camera, roundtrip_errors_mm
    release = fake.write_fake_release(data_root)
    run_recipe(data_root, 'hi4d')
    dataset = load_dataset(data_root / 'cache' / 'hi4d.posepile')
    kept = expected_views(release)
    # 8 cameras x 2 people x frames 10 and 12 (frame 11 moved 0.5 mm), minus camera 4's tiny mask of person 0
    assert len(kept) == 8 * 2 * 2 - 1
    assert sorted(ex.image_path for ex in dataset.examples[0]) == sorted(
        f'hi4d_downscaled/{fake.SEQUENCE}/images/{c}/{f:06d}_{p:02d}.jpg' for f, c, p in kept)

    models = {g: bodymodels.load('smpl', g, data_root / 'body_models') for g in ('male', 'female')}
    images = {(i['camera'], i['frame']): i for i in release['images']}
    errors, param_errors, union_seen = [], [], 0
    for example in dataset.examples[0]:
        *_, camera_id, name = example.image_path.split('/')
        frame, person = map(int, name[:-4].split('_'))
        truth, image = release['frames'][frame], images[(int(camera_id), frame)]
        params, model = example.parameters, models[fake.GENDERS[person]]
        assert params['type'] == 'smpl' and params['gender'] == fake.GENDERS[person]
        np.testing.assert_allclose(params['pose'], truth['pose'][person], atol=1e-6)
        np.testing.assert_allclose(params['shape'], truth['betas'][person], atol=1e-6)
        np.testing.assert_allclose(params['trans'], truth['transl'][person], atol=1e-6)
        world = truth['joints_m'][person] * 1000
        assert np.linalg.norm(parameter_joints_mm(params, model) - world, axis=-1).max() < 0.05
        param_errors += roundtrip_errors_mm(params, world, [example.camera, other_camera(len(param_errors))], model)
        # world parameters -> the crop camera -> forward kinematics -> projection: on the dots of this person
        in_camera = bodymodels.rototranslate(params, example.camera.R, example.camera.t / 1000, model=model)
        projected = example.camera.camera_to_image(parameter_joints_mm(in_camera, model))
        others = [example.camera.camera_to_image(parameter_joints_mm(bodymodels.rototranslate(
            dict(params, pose=truth['pose'][q], shape=truth['betas'][q], trans=truth['transl'][q],
                 gender=fake.GENDERS[q]), example.camera.R, example.camera.t / 1000, model=models[fake.GENDERS[q]]),
            models[fake.GENDERS[q]])) for q in (0, 1)]
        drawn = np.all((image['pixels'][person] >= 13) & (image['pixels'][person] < [fake.WIDTH - 13,
                                                                                      fake.HEIGHT - 13]), axis=1)
        radius = max(3, int(round(2 * example.camera.intrinsic_matrix[0, 0] / fake.FOCAL_PX)))
        errors += dot_errors(data_root / example.image_path, np.where(drawn[:, None], projected, np.nan), radius,
                             neighbours=np.concatenate(others))
        # the stored mask is the union of both people's masks, reprojected into the crop
        mask = masks.decode(example.mask)
        for q, points in enumerate(others):  # both people's joints (the other one's where in the crop)
            inner = np.round(points).astype(int)
            inside = np.all((inner >= 2) & (inner < [mask.shape[1] - 2, mask.shape[0] - 2]), axis=1)
            assert inside.sum() > (10 if q == person else -1)
            if inside.sum() > 5 and (int(camera_id), frame, q) not in fake.EMPTY_MASKS + fake.TINY_MASKS:
                union_seen += 1 - (q == person)
                assert mask[inner[inside, 1], inner[inside, 0]].mean() > 0.95
    assert max(param_errors) < 0.1 and union_seen > 5
    assert len(errors) > 31 * 3
    assert np.median(errors) < 0.5 and np.percentile(errors, 95) < 1.0, (np.median(errors), np.max(errors))


def test_hungarian_assignment_of_masks_to_detections():
    from posepile.ds.hi4d.main import assign_people
    masks = [np.zeros((100, 200), bool), np.zeros((100, 200), bool), np.zeros((100, 200), bool)]
    masks[0][10:60, 10:50] = True
    masks[1][20:90, 100:160] = True
    detections = np.array([[98, 18, 64, 74, 0.9], [8, 8, 44, 54, 0.8], [170, 0, 20, 20, 0.99]])
    assigned = assign_people(masks, detections)
    assert sorted(assigned) == [0, 1]  # person 2 (empty mask) gets no detection: IoU 0 < 0.1
    np.testing.assert_allclose(assigned[0], detections[1, :4])
    np.testing.assert_allclose(assigned[1], detections[0, :4])
    assert assign_people(masks, np.zeros((0, 5))) == {}
    mask_boxes = assign_people(masks, None)
    assert sorted(mask_boxes) == [0, 1]
    np.testing.assert_allclose(mask_boxes[0], [10, 10, 40, 50])


def test_malformed_files_give_one_line_errors(tmp_path):
    from posepile.ds.hi4d.main import Hi4DFormatError, load_cameras, load_smpl
    fake.write_fake_release(tmp_path)
    seq = tmp_path / 'hi4d' / fake.SEQUENCE
    path = seq / 'cameras' / 'rgb_cameras.npz'
    data = dict(np.load(path))
    np.savez(path, **dict(data, extrinsics=data['extrinsics'][:, :, :3]))
    with pytest.raises(Hi4DFormatError, match='extrinsics has shape') as info:
        load_cameras(path)
    assert str(path) in str(info.value) and '\n' not in str(info.value)
    smpl_path = seq / 'smpl' / '000010.npz'
    smpl_path.write_bytes(smpl_path.read_bytes()[:100])
    with pytest.raises(Hi4DFormatError, match='000010.npz: not a readable') as info:
        load_smpl(smpl_path, 2)
    assert '\n' not in str(info.value)
