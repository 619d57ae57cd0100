import json

import numpy as np
import pytest

from tests.fakes import arctic as fake
from tests.markers import dot_errors
from tests.test_intercap_recipe import run_recipe


def expected_images(release):
    """Protocol p1 train + val sequences; per view the frames the sampler (100 mm, buffer 100) keeps on the world
    joints (the same for every view), whose image <mocap frame + ioi_offset> exists in the zip."""
    from posepile.util.sampling import select_frames
    kept = []
    for sequence in fake.SEQUENCES:
        images = [i for i in release['images'] if i['sequence'] == sequence]
        frames = sorted({i['frame'] for i in images} | {0})
        joints = np.stack([next(i for i in release['images'] if i['sequence'] == sequence and i['frame'] == f)
                           ['joints_m'] * 1000 for f in frames])
        chosen = set(select_frames(joints, 100, buffer_size=100, check_validity=True, nan_unchanged=True))
        kept += [i for i in images if i['frame'] in chosen]
    return kept


def test_arctic_recipe_on_fake_release(data_root):
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.storage.annotations import load_dataset
    from tests.toy_bodymodels import other_camera, roundtrip_errors_mm
    release = fake.write_fake_release(data_root)
    run_recipe(data_root, 'arctic')
    dataset = load_dataset(data_root / 'cache' / 'arctic.posepile')
    kept = expected_images(release)
    # 2 sequences x frames {0, 2} (frame 1 moved 0.5 mm) x 8 views, minus the missing view-8 image
    assert len(kept) == 2 * 2 * 8 - 1
    for split, name in ((0, 'train'), (1, 'val')):
        assert sorted(ex.image_path for ex in dataset.examples[split]) == sorted(
            f'arctic_downscaled/{i["sequence"]}/{i["view"]}/{i["frame"] + fake.IOI_OFFSET:05d}.jpg'
            for i in kept if i['split'] == name)
    by_path = {f'arctic_downscaled/{i["sequence"]}/{i["view"]}/{i["frame"] + fake.IOI_OFFSET:05d}.jpg': i
               for i in release['images']}
    model = bodymodels.load('smplx', 'male', data_root / 'body_models')
    errors, param_errors = [], []
    for example in [*dataset.examples[0], *dataset.examples[1]]:
        image = by_path[example.image_path]
        params = example.parameters
        assert params['type'] == 'smplx' and params['gender'] == 'male' and len(params['shape']) == 16
        np.testing.assert_allclose(params['shape'], release['betas'], atol=1e-4)  # from the rest mesh
        np.testing.assert_allclose(params['pose'], image['pose'], atol=1e-6)  # hands as released (flat mean)
        np.testing.assert_allclose(params['trans'], image['transl'], atol=1e-6)
        world = image['joints_m'] * 1000
        assert np.linalg.norm(parameter_joints_mm(params, model) - world, axis=-1).max() < 0.05
        param_errors += roundtrip_errors_mm(params, world, [example.camera, other_camera(len(param_errors))], model)
        in_camera = bodymodels.rototranslate(params, example.camera.R, example.camera.t / 1000, model=model)
        projected = example.camera.camera_to_image(parameter_joints_mm(in_camera, model))
        drawn = np.all((image['pixels'] >= 13) & (image['pixels'] < [fake.WIDTH - 13, fake.HEIGHT - 13]), axis=1)
        radius = max(3, int(round(2 * example.camera.intrinsic_matrix[0, 0] / fake.FOCAL_PX)))
        errors += dot_errors(data_root / example.image_path, np.where(drawn[:, None], projected, np.nan), radius)
        x, y, w, h = example.bbox
        assert 0.85 < w * h / np.prod(1.1 * (projected.max(0) - projected.min(0))) < 1.15
        assert example.mask is not None
    assert max(param_errors) < 0.1
    assert len(errors) > 31 * 5
    assert np.median(errors) < 0.5 and np.percentile(errors, 95) < 1.0, (np.median(errors), np.max(errors))


def test_malformed_files_give_one_line_errors(tmp_path):
    from posepile.ds.arctic.main import ARCTICFormatError, load_misc, load_sequence
    fake.write_fake_release(tmp_path)
    path = tmp_path / 'arctic' / 'meta' / 'misc.json'
    data = json.loads(path.read_text())
    data['s01']['world2cam'] = data['s01']['world2cam'][:7]
    path.write_text(json.dumps(data))
    with pytest.raises(ARCTICFormatError, match=r's01: intris_mat \(8, 3, 3\) / world2cam \(7, 4, 4\)') as info:
        load_misc(path)
    assert str(path) in str(info.value) and '\n' not in str(info.value)
    npy = tmp_path / 'arctic' / 'raw_seqs' / 's01' / 'box_grab_01.smplx.npy'
    assert load_sequence(npy)[0].shape == (3, 165)
    npy.write_bytes(npy.read_bytes()[:300])
    with pytest.raises(ARCTICFormatError, match='box_grab_01.smplx.npy: cannot read') as info:
        load_sequence(npy)
    assert '\n' not in str(info.value)
