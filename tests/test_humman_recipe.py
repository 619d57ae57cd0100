import numpy as np

from tests.fakes import humman as fake
from tests.markers import dot_errors
from tests.test_genebody_recipe import run_recipe


def expected_images(release):
    """The rules re-stated: per sequence the sampler (100 mm, buffer 100) on the world SMPL joints (mm) of the
    fitted frames, then every Kinect whose mask exists and is not empty."""
    from posepile.util.sampling import select_frames
    kept = []
    for seq in fake.SEQUENCES:
        frames = [f for f in release['frames'] if f['seq'] == seq]
        chosen = {frames[i]['frame'] for i in select_frames(np.stack([f['joints_m'] * 1000 for f in frames]), 100,
                                                             buffer_size=100, check_validity=True,
                                                             nan_unchanged=True)}
        kept += [i for i in release['images'] if i['seq'] == seq and i['frame'] in chosen and i['kept_view']]
    return kept


def test_humman_recipe_on_fake_release(data_root):
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.storage.annotations import load_dataset
    release = fake.write_fake_release(data_root)
    result = run_recipe(data_root, 'humman')
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list((data_root / 'humman').glob('p0*'))  # nothing extracted: read in place from the zips
    dataset = load_dataset(data_root / 'cache' / 'humman.posepile')
    kept = expected_images(release)
    # p000438: 4 frames -> 3 x 3 Kinects - 1 empty mask = 8; p000455: 2 frames x 2 Kinects - 1 missing mask = 3
    assert len(kept) == 11
    assert sorted(ex.image_path for ex in dataset.examples[0]) == sorted(
        f'humman_downscaled/{i["seq"]}/kinect_{i["kinect"]}/{i["frame"]}.jpg' for i in kept)
    model = bodymodels.load('smpl', 'neutral', data_root / 'body_models')
    frames = {(f['seq'], f['frame']): f for f in release['frames']}
    images = {(i['seq'], i['frame'], i['kinect']): i for i in release['images']}
    errors, world_errors = [], []
    for example in dataset.examples[0]:
        _, seq, _, name = example.image_path.split('/')
        truth = frames[(seq, name[:-4])]
        params = example.parameters
        assert example.world_coords is None and params['type'] == 'smpl' and params['gender'] == 'neutral'
        world_errors.append(np.abs(parameter_joints_mm(params, model) - truth['joints_m'] * 1000).max())
        in_camera = bodymodels.rototranslate(params, example.camera.R, example.camera.t / 1000, model=model)
        joints = parameter_joints_mm(in_camera, model)
        K = example.camera.intrinsic_matrix
        pixels = joints[:, :2] / joints[:, 2:] * np.diag(K)[:2] + K[:2, 2]
        raw = images[(seq, name[:-4], example.image_path.split('/')[2][-3:])]['pixels']
        drawn = np.all((raw >= 13) & (raw < [fake.WIDTH - 13, fake.HEIGHT - 13]), axis=1)  # dots 13+ px inside
        errors += dot_errors(data_root / example.image_path, np.where(drawn[:, None], pixels, np.nan),
                             max(3, int(round(2 * K[0, 0] / fake.FOCAL_PX))), neighbours=pixels)
    assert max(world_errors) < 0.05, max(world_errors)
    assert len(errors) > 3 * len(dataset.examples[0]), len(errors)
    assert np.median(errors) < 0.5 and np.max(errors) < 1.5, (np.median(errors), np.max(errors))


def test_corrupt_camera_json_is_one_line(data_root):
    import zipfile
    fake.write_fake_release(data_root)
    path = data_root / 'humman/recon_cameras.zip'
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('p000438_a000040/cameras.json', '{"kinect_color_000": {"K": [1, 2]')
    result = run_recipe(data_root, 'humman')
    assert result.returncode != 0
    line = result.stderr.strip().splitlines()[-1]
    assert 'recon_cameras.zip::p000438_a000040/cameras.json: not valid JSON' in line
    assert 'Traceback' not in result.stderr
