import numpy as np
import pytest

from tests.fakes import dna_rendering as fake
from tests.markers import dot_errors
from tests.test_intercap_recipe import run_recipe

SELECTION = [1, 2, 4, 5, 7, 8, *range(16, 22), *range(25, 144)]  # the original's 131 of the 144 keypoints


def expected_views(release):
    """Per sequence and camera, the frames the sampler (100 mm, buffer 200) keeps on the camera-frame joints (for a
    static camera the same as on the world joints), minus views with an empty mask."""
    from posepile.util.sampling import select_frames
    kept = []
    for (part, seq) in fake.SEQUENCES:
        joints = np.stack([release['frames'][(part, seq, f)]['joints_m'] * 1000 for f in range(len(fake.FRAME_KEYS))])
        chosen = select_frames(joints, 100, buffer_size=200, check_validity=True, nan_unchanged=True)
        kept += [i for i in release['images'] if (i['part'], i['seq']) == (part, seq) and i['frame'] in set(chosen)
                 and i['mask_box'] is not None]
    return kept


def test_dna_rendering_recipe_on_fake_release(data_root):
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.ds.dna_rendering.main import joint_info
    from posepile.storage.annotations import load_dataset
    from tests.toy_bodymodels import other_camera, roundtrip_errors_mm
    pytest.importorskip('h5py')
    release = fake.write_fake_release(data_root)
    run_recipe(data_root, 'dna_rendering')
    dataset = load_dataset(data_root / 'cache' / 'dna_rendering.posepile')
    kept = expected_views(release)
    # 2 sequences x 4 cameras x frames {0, 2} (frame 1 moved 0.5 mm), minus one empty mask; none implausible
    assert len(kept) == 2 * 4 * 2 - 1
    assert sorted(ex.image_path for ex in dataset.examples[0]) == sorted(
        f'dna_rendering_downscaled/{i["part"]}_{i["seq"]}/{i["camera"]:02d}/{i["frame"]:06d}.jpg' for i in kept)
    assert dataset.joint_info.n_joints == 131 == len(SELECTION) and joint_info().names[:2] == ['lhip', 'rhip']
    models = {g: bodymodels.load('smplx', g, data_root / 'body_models') for g in ('male', 'female')}
    images = {(i['part'], i['seq'], i['camera'], i['frame']): i for i in release['images']}
    errors, param_errors = [], []
    for example in dataset.examples[0]:
        _, out_id, camera_id, name = example.image_path.split('/')
        part, seq = int(out_id[0]), out_id[2:]
        frame = int(name[:-4])
        truth, image = release['frames'][(part, seq, frame)], images[(part, seq, int(camera_id), frame)]
        # keypoints: the selected 131 in mm, the near-duplicate pair (129, 130 of the 144) NaN
        expected = truth['keypoints_m'][SELECTION] * 1000
        expected[[SELECTION.index(129), SELECTION.index(130)]] = np.nan
        np.testing.assert_allclose(example.world_coords, expected, atol=0.01)
        params, model = example.parameters, models[truth['gender']]
        assert params['type'] == 'smplx' and params['gender'] == truth['gender'] and 'scale' not in params
        for key, raw in (('pose', 'pose'), ('shape', 'betas'), ('expression', 'expression'), ('trans', 'transl')):
            np.testing.assert_allclose(params[key], truth[raw], atol=1e-6)
        world = truth['joints_m'] * 1000
        assert np.linalg.norm(parameter_joints_mm(params, model) - world, axis=-1).max() < 0.05
        param_errors += roundtrip_errors_mm(params, world, [example.camera, other_camera(len(param_errors))], model)
        # the keypoints and the fit's joints, projected into the crop, on the dots
        in_camera = bodymodels.rototranslate(params, example.camera.R, example.camera.t / 1000, model=model)
        fit_pixels = example.camera.camera_to_image(parameter_joints_mm(in_camera, model))
        keypoint_pixels = example.camera.world_to_image(example.world_coords)
        all_pixels = example.camera.world_to_image(truth['keypoints_m'] * 1000)
        width, height = fake.SIZES[fake.group_of(int(camera_id))]
        raw = image['pixels']
        drawn = np.all((raw >= 13) & (raw < [width - 13, height - 13]), axis=1)
        radius = max(3, int(round(2 * example.camera.intrinsic_matrix[0, 0] / fake.FOCAL_PX[fake.group_of(
            int(camera_id))])))
        errors += dot_errors(data_root / example.image_path, np.where(drawn[:55, None], fit_pixels, np.nan), radius,
                             neighbours=all_pixels)
        errors += dot_errors(data_root / example.image_path,
                             np.where(drawn[SELECTION][:, None], keypoint_pixels, np.nan), radius,
                             neighbours=all_pixels)
        assert example.mask is not None
    assert max(param_errors) < 0.1
    assert len(errors) > 15 * 10
    assert np.median(errors) < 0.5 and np.percentile(errors, 95) < 1.0, (np.median(errors), np.max(errors))


def test_malformed_smc_gives_one_line_errors(tmp_path):
    import h5py
    from posepile.ds.dna_rendering.main import DNARenderingFormatError, load_cameras, load_smplx
    fake.write_fake_release(tmp_path)
    path = tmp_path / 'dna_rendering' / 'dna_rendering_part1_annotations' / '0012_01_annots.smc'
    with h5py.File(path, 'a') as f:
        del f['Camera_Parameter/48/RT']
        f['Camera_Parameter/48/RT'] = np.eye(3)
        del f['SMPLx/transl']
    with pytest.raises(DNARenderingFormatError, match=r'Camera_Parameter/48/RT has shape \(3, 3\)') as info:
        load_cameras(path)
    assert str(path) in str(info.value) and '\n' not in str(info.value)
    with pytest.raises(DNARenderingFormatError, match='no SMPLx/transl'):
        load_smplx(path)
    broken = tmp_path / 'broken.smc'
    broken.write_bytes(b'not hdf5')
    with pytest.raises(DNARenderingFormatError, match='broken.smc: not a readable SMC/HDF5'):
        load_cameras(broken)
