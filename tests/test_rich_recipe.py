import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.fakes import rich as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent
# The 42 names of the SMPL-X selection that AGORA and rich_body share (facts doc, Appendix A), written here
# independently of the recipe.
BODY_42 = ('pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,relb,'
           'lwri,rwri,jaw,leyehf,reyehf,lmiddle1,rmiddle1,nose,reye,leye,rear,lear,lto2,lto3,lhee,rto2,rto3,rhee,'
           'lthu,lmiddle,rthu,rmiddle').split(',')


def _selected_people(release, seq, subject, frames_rule):
    """The subject's people in the frames of `frames_rule` ('first camera images' as the original, or 'fits'),
    thinned by the original's sampler (100 mm, buffer 100, on the 127 joints in mm)."""
    from posepile.util.sampling import select_frames
    first_camera = min(i['camera'] for i in release['images'] if i['seq'] == seq)
    imaged = {i['frame'] for i in release['images'] if i['seq'] == seq and i['camera'] == first_camera}
    people = sorted((p for p in release['people'] if p['seq'] == seq and p['subject'] == subject
                     and (frames_rule == 'fits' or p['frame'] in imaged)), key=lambda p: p['frame'])
    chosen = select_frames(np.stack([p['joints_m'] * 1000 for p in people]), 100, buffer_size=100,
                           check_validity=True, nan_unchanged=True)
    return [people[i] for i in chosen]


def expected_views(release, frames_rule='first camera images'):
    """{split: [(crop relpath, person, image)]}: per subject the frames the original's sampler keeps x static
    cameras with an image of that frame whose box has both sides >= 100 px."""
    result = {'train': [], 'val': []}
    for seq, spec in fake.SEQUENCES.items():
        for subject in spec['subjects']:
            for person in _selected_people(release, seq, subject, frames_rule):
                for image in release['images']:
                    if (image['seq'], image['frame']) == (seq, person['frame']) and image['static'] \
                            and not image['small']:
                        relpath = image['relpath'].replace('rich/', 'rich_downscaled/', 1)[:-4] + f'_{subject:03d}.jpg'
                        result[spec['phase']].append((relpath, person, image))
    return result


def _rototranslate(parameters, R, t_m, model):
    """Parameters in the camera frame X_cam = R (X - t): posepile.bodymodels.rototranslate."""
    from posepile import bodymodels
    return bodymodels.rototranslate(parameters, R, t_m, model=model)


def run_recipe(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    env.pop('POSEPILE_DETECTOR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/rich/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_joint_names_and_the_body_selection():
    from posepile import registry
    from posepile.ds.rich import main as rich
    names = rich.JOINT_NAMES.split(',')
    assert len(names) == 127 and len(set(names)) == 127
    assert names[:3] == ['pelv', 'lhip', 'rhip'] and names[55:60] == ['nose', 'reye', 'leye', 'rear', 'lear']
    assert names[-1] == 'rlip3' and names[76] == 'reyebrow1'
    assert [names[i] for i in rich.BODY_INDICES] == BODY_42
    assert registry.joint_info('rich').n_joints == 127 and registry.joint_info('rich_body').names == BODY_42


def test_rich_recipe_on_fake_release(data_root):
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.ds.rich import main as rich
    from posepile.storage.annotations import load_dataset
    from posepile.util import boxes, masks
    release = fake.write_fake_release(data_root)
    result = run_recipe(data_root)
    assert 'camera 3 skipped: it moves' in result.stderr
    # the two fits without an image are not iterated, so no selected frame lacks its image
    assert 'missing image 0' in result.stderr and 'fit frames without a first-camera image 2' in result.stderr
    dataset = load_dataset(data_root / 'cache' / 'rich.posepile')
    body = load_dataset(data_root / 'cache' / 'rich_body.posepile')
    expected = expected_views(release)
    # train: P0, P1, P2 of 5 frames x 3 static cameras; val: 3 + 2 frames x 2 cameras (camera 1's boxes < 100 px)
    assert (len(expected['train']), len(expected['val'])) == (9, 10)
    # a sampler over the fit frames takes the image-less frames 12 (P1) and 5 (P2) as references and loses the
    # imaged P1 of frame 20 (train, 3 views) and P2 of frame 20 (val subject 3, 2 views)
    over_fits = expected_views(release, 'fits')
    assert (len(over_fits['train']), len(over_fits['val'])) == (6, 8)
    assert sum(p['frame'] in (5, 12) for s, spec in fake.SEQUENCES.items() for subject in spec['subjects']
               for p in _selected_people(release, s, subject, 'fits')) == 2
    for split, index in (('train', 0), ('val', 1)):
        assert sorted(ex.image_path for ex in dataset.examples[index]) == sorted(r for r, _, _ in expected[split])
        assert sorted(ex.image_path for ex in body.examples[index]) == sorted(r for r, _, _ in expected[split])
    assert not dataset.examples[2] and body.joint_info.names == BODY_42

    truth = {r: (person, image) for views in expected.values() for r, person, image in views}
    models = {g: bodymodels.load('smplx', g, data_root / 'body_models') for g in ('male', 'female')}
    errors, param_errors, mask_coverage = [], [], []
    body_examples = {ex.image_path: ex for ex in [*body.examples[0], *body.examples[1]]}
    for example in [*dataset.examples[0], *dataset.examples[1]]:
        person, image = truth[example.image_path]
        assert example.image_path.endswith('.jpg')
        np.testing.assert_allclose(example.world_coords, person['joints_m'] * 1000, atol=0.05)  # mm, all 127
        np.testing.assert_allclose(body_examples[example.image_path].world_coords,
                                   person['joints_m'][rich.BODY_INDICES] * 1000, atol=0.05)
        params = example.parameters
        assert params['type'] == 'smplx' and params['gender'] == person['gender'] and len(params['pose']) == 165
        np.testing.assert_allclose(params['pose'][3:], person['pose'][3:], atol=1e-5)  # hands from PCA + mean
        np.testing.assert_allclose(params['expression'], person['fit']['expression'][0], atol=1e-6)
        model = models[person['gender']]
        # world frame: the stored fit gives the world joints; rototranslated by the example's camera, the
        # camera-frame joints
        np.testing.assert_allclose(parameter_joints_mm(params, model), example.world_coords[:55], atol=0.1)
        camera_params = _rototranslate(params, example.camera.R, np.asarray(example.camera.t) / 1000, model)
        param_errors.append(np.linalg.norm(parameter_joints_mm(camera_params, model)
                                           - example.camera.world_to_camera(example.world_coords[:55]), axis=-1).max())
        # the person mask: a crop-sized RLE covering most of the subject's in-crop skeleton joints and little of
        # the crop outside the subject's joint box
        assert example.mask is not None and body_examples[example.image_path].mask == example.mask
        mask = masks.decode(example.mask)
        crop = cv2.imread(str(data_root / example.image_path))
        assert mask.shape == crop.shape[:2]
        skeleton = np.round(example.camera.world_to_image(example.world_coords[:25])).astype(int)
        inside = np.all((skeleton >= 0) & (skeleton < [mask.shape[1], mask.shape[0]]), axis=1)
        assert inside.sum() >= 10
        mask_coverage.append(mask[skeleton[inside, 1], skeleton[inside, 0]].mean())
        x, y, w, h = boxes.expand(boxes.bb_of_points(example.camera.world_to_image(example.world_coords)), 1.2)
        person_region = np.zeros_like(mask)
        person_region[max(0, int(y)):int(y + h), max(0, int(x)):int(x + w)] = True
        assert mask.sum() > 0 and (mask & ~person_region).sum() < 0.2 * mask.sum()
        assert mask.sum() < 0.9 * example.bbox[2] * example.bbox[3]  # a segmentation, not the box
        projected = example.camera.world_to_image(example.world_coords)
        assert min(example.bbox[2:]) > 50
        raw = image['pixels'][person['subject']]  # dots are drawn only 13+ px inside the raw image
        drawn = np.all((raw >= 13) & (raw < [fake.WIDTH - 13, fake.HEIGHT - 13]), axis=1)
        projected[~drawn] = np.nan
        neighbours = np.concatenate([example.camera.world_to_image(p['joints_m'] * 1000) for p in release['people']
                                     if (p['seq'], p['frame']) == (person['seq'], person['frame'])])
        radius = max(3, int(round(2 * example.camera.intrinsic_matrix[0, 0] / fake.FOCAL_PX)))
        errors += dot_errors(data_root / example.image_path, projected, radius, neighbours=neighbours)
    assert max(param_errors) < 0.1, max(param_errors)  # mm
    assert np.mean(mask_coverage) > 0.8 and min(mask_coverage) > 0.5, mask_coverage
    assert len(errors) > 19 * 10
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


@pytest.fixture(scope='module')
def written(tmp_path_factory):
    """(root, release) of one fake release shared by the reader tests (they corrupt copies of its files)."""
    root = tmp_path_factory.mktemp('rich_release')
    return root, fake.write_fake_release(root)


def test_load_camera_projects_the_joints_onto_the_dots(written):
    from posepile.ds.rich.main import load_camera
    tmp_path, release = written
    for image in release['images']:
        if not image['static']:
            continue
        setup = image['seq'].split('_')[0]
        camera = load_camera(tmp_path / 'rich' / 'scan_calibration' / setup / 'calibration'
                             / f'{image["camera"]:03d}.xml')
        np.testing.assert_allclose(camera.world_up, -camera.R[1])
        for subject, pixels in image['pixels'].items():
            person = [p for p in release['people'] if (p['seq'], p['frame'], p['subject'])
                      == (image['seq'], image['frame'], subject)][0]
            np.testing.assert_allclose(camera.world_to_image(person['joints_m'] * 1000), pixels, atol=1e-3)


@pytest.mark.parametrize('corrupt, message', [
    (lambda text: text.replace('<rows>3</rows>\n  <cols>4</cols>', '<rows>3</rows>\n  <cols>5</cols>', 1),
     'CameraMatrix> has 12 values, but rows x cols = 3 x 5'),
    (lambda text: text.replace('</opencv_storage>', ''), 'cannot read the calibration'),
    (lambda text: text[:text.index('<Distortion')] + '</opencv_storage>\n', r'no <Distortion><data> element'),
])
def test_malformed_calibration_gives_one_line_error_naming_the_file(written, tmp_path, corrupt, message):
    from posepile.ds.rich.main import RICHFormatError, load_camera
    source = written[0] / 'rich' / 'scan_calibration' / 'ParkingLot1' / 'calibration' / '001.xml'
    path = tmp_path / 'scan_calibration' / 'ParkingLot1' / 'calibration' / '001.xml'
    path.parent.mkdir(parents=True)
    path.write_text(corrupt(source.read_text()))
    with pytest.raises(RICHFormatError, match=message) as info:
        load_camera(path)
    assert isinstance(info.value, ValueError) and str(path) in str(info.value) and '\n' not in str(info.value)


def test_malformed_fit_and_unknown_gender(written, tmp_path):
    import pickle

    from posepile.ds.rich.main import RICHFormatError, load_fit, subject_gender
    source = written[0] / 'rich' / 'train_body' / 'ParkingLot1_002_burpee3' / '00010' / '002.pkl'
    assert load_fit(source)['left_hand_pose'].shape == (12,)
    fit = pickle.loads(source.read_bytes())
    path = tmp_path / '002.pkl'
    path.write_bytes(pickle.dumps(dict(fit, body_pose=fit['body_pose'][:, :60])))
    with pytest.raises(RICHFormatError, match='002.pkl: body_pose has 60 values, expected 63'):
        load_fit(path)
    with pytest.raises(RICHFormatError, match='subject 9 is not in the gender table'):
        subject_gender(9, 'Gym_009_pushup')


@pytest.mark.realdata
def test_real_toolkit_subjects_are_in_the_gender_table(realdata):
    """Every subject of the official toolkit's train and val sequence lists (rich_toolkit resource/meta) parses
    from its sequence name and has the toolkit's gender in the recipe's table (the original raised on others)."""
    from posepile.ds.rich.main import parse_sequence_name, subject_gender
    from tests.conftest import realdata_file
    n_checked = 0
    for split, n_sequences in (('train', 62), ('val', 28)):
        lines = realdata_file(realdata, f'rich/toolkit_resource/meta/{split}.txt').read_text().splitlines()
        header = lines[0].split('\t')
        rows = [dict(zip(header, line.split('\t'))) for line in lines[1:] if line.strip()]
        assert len({row['sequence_name'] for row in rows}) == n_sequences
        for row in rows:
            setup, subjects = parse_sequence_name(row['sequence_name'])
            assert setup == row['capture_name'] and int(row['id']) in subjects
            assert subject_gender(int(row['id']), row['sequence_name']) == row['gender']
            n_checked += 1
    assert n_checked == 92  # sequence x subject rows
