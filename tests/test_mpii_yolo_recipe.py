import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.mpii import main as mpii
from posepile.ds.mpii_yolo import main as mpii_yolo
from tests.conftest import realdata_file
from tests.fakes import mpii_yolo as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _run(data_root, detector=None, name='mpii_yolo'):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1',
               PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}')
    env.pop('POSEPILE_CACHE_DIR', None)
    env.pop('POSEPILE_DETECTOR', None)
    if detector:
        env['POSEPILE_DETECTOR'] = detector
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/mpii_yolo/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return load_dataset(data_root / 'cache' / f'{name}.posepile')


def _load(data_root, name):
    from posepile.storage.annotations import load_dataset
    return load_dataset(data_root / 'cache' / f'{name}.posepile')


def _check_examples(data_root, dataset, written, expected, joints=fake.LIMB_JOINTS):
    by_key = {(p['image'], p['person_index']): p for p in written}
    got = sorted((Path(e.image_path).stem.rsplit('_', 1)[0] + '.jpg', e.extra['person_index'])
                 for e in dataset.examples[0])
    assert got == sorted((p['image'], p['person_index']) for p in expected)
    errors = []
    for example in dataset.examples[0]:
        person = by_key[(Path(example.image_path).stem.rsplit('_', 1)[0] + '.jpg', example.extra['person_index'])]
        labelled = np.isfinite(person['coords'][joints, 0])
        assert np.array_equal(np.isfinite(example.coords).all(axis=1), labelled)
        errors += dot_errors(data_root / example.image_path, example.coords, radius=4)
    assert len(errors) > 15
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_mpii_yolo_recipe_with_given_detections(data_root):
    written = fake.write_fake_release(data_root / 'mpii')
    fake.write_detections(mpii_yolo.detections_path(data_root), written)  # the detect stage then skips
    dataset = _run(data_root)
    expected = [p for p in written if p['kind'] == 'good' and p['n_limb_valid'] > 6]
    assert len(written) == 6 and len(expected) == 3 and len(dataset.examples[0]) == 3
    assert dataset.joint_info.names == 'rank,rkne,rhip,lhip,lkne,lank,rwri,relb,lelb,lwri'.split(',')
    assert any(np.isnan(e.coords).any() for e in dataset.examples[0])  # the 7-joint person
    assert all(e.extra['detection_score'] == pytest.approx(0.9) for e in dataset.examples[0])
    _check_examples(data_root, dataset, written, expected)
    # the 16-joint variant from the same crops: > 6 of all 16 joints valid (keeps the 5-of-10-limb person)
    alljoints = _load(data_root, 'mpii_yolo_alljoints')
    expected_all = [p for p in written if p['kind'] == 'good' and p['n_valid'] > 6]
    assert len(expected_all) == 4 and len(alljoints.examples[0]) == 4
    assert alljoints.joint_info.names == mpii.JOINT_NAMES.split(',')
    _check_examples(data_root, alljoints, written, expected_all, joints=list(range(16)))


def test_mpii_yolo_recipe_with_gt_detector(data_root):
    written = fake.write_fake_release(data_root / 'mpii')
    dataset = _run(data_root, detector='gt:1.25')
    expected = [p for p in written if p['n_limb_valid'] > 6]
    assert len(expected) == 5 and len(dataset.examples[0]) == 5
    _check_examples(data_root, dataset, written, expected)
    expected_all = [p for p in written if p['n_valid'] > 6]
    assert len(expected_all) == 6
    _check_examples(data_root, _load(data_root, 'mpii_yolo_alljoints'), written, expected_all, joints=list(range(16)))


def test_matching_uses_score_iou_and_joint_count():
    coords = np.stack([np.linspace(100, 200, 16), np.linspace(50, 350, 16)], axis=1)
    person = {'coords': coords}
    box = mpii_yolo.gt_box(coords)
    far = [500, 500, 50, 50, 0.99]
    assert [i for i, _ in mpii_yolo.match_people([person], [far, [*box, 0.9]])] == [0]
    assert mpii_yolo.match_people([person], [[*box, 0.5]]) == []  # score must exceed 0.5
    assert mpii_yolo.match_people([person], [far]) == []
    sparse = coords.copy()
    sparse[[0, 1, 4, 5]] = np.nan  # 6 of the 10 limb joints
    assert mpii_yolo.match_people([{'coords': sparse}], [[*box, 0.9]]) == []
    # the 16-joint variant counts over all 16: 12 valid, kept; 6 valid, dropped; 7 valid, kept
    assert len(mpii_yolo.match_people([{'coords': sparse}], [[*box, 0.9]], mpii_yolo.ALL_JOINTS)) == 1
    six = coords.copy()
    six[6:] = np.nan
    assert mpii_yolo.match_people([{'coords': six}], [[*box, 0.9]], mpii_yolo.ALL_JOINTS) == []
    seven = coords.copy()
    seven[7:] = np.nan
    assert len(mpii_yolo.match_people([{'coords': seven}], [[*box, 0.9]], mpii_yolo.ALL_JOINTS)) == 1


def test_huge2d_common_takes_mpii_shoulders_from_the_16_joint_variant(data_root):
    """The original's 2D mix takes make_mpii_yolo(filter_joints=False): MPII's shoulders reach the common
    skeleton, and a built mpii_yolo_alljoints gives MPII examples with finite shoulders in huge2d_common."""
    from posepile import registry
    from posepile.merging import merge, mixes
    mpii_entries = [e.dataset for e in mixes.get_mix('huge2d_common') if e.dataset.startswith('mpii')]
    assert mpii_entries == ['mpii_yolo_alljoints']
    source = registry.joint_info('mpii_yolo_alljoints')
    assert source.n_joints == 16 and registry.joint_info('mpii_yolo').n_joints == 10
    common = mixes.mix_joint_info('huge2d_common')
    mapping = source.get_coord_mapping(common)
    for name in ('lsho', 'rsho'):
        assert source.names[mapping[common.ids[name]]] == name
    # end to end on the fake: the merged MPII examples keep their labelled shoulders
    written = fake.write_fake_release(data_root / 'mpii')
    fake.write_detections(mpii_yolo.detections_path(data_root), written)
    dataset = _run(data_root, name='mpii_yolo_alljoints')
    merged = merge.merge_2d_common([(dataset, [(0, 0)])])
    body = [mpii.JOINT_NAMES.split(',').index(n) for n in merge.BODY_JOINTS_2D]
    expected = [p for p in written if p['kind'] == 'good' and p['n_valid'] > 6
                and np.isfinite(p['coords'][body, 0]).sum() > 6]
    assert len(merged.examples[0]) == len(expected) == 4
    shoulders = [common.ids['lsho'], common.ids['rsho']]
    assert all(np.isfinite(e.coords[shoulders]).all() for e in merged.examples[0])


@pytest.mark.parametrize('kind', ['truncated', 'no_release'])
def test_malformed_annotation_file_names_file(data_root, kind):
    import scipy.io
    (data_root / 'mpii').mkdir()
    path = data_root / 'mpii' / mpii.ANNOTATION_FILE
    if kind == 'truncated':
        path.write_bytes(b'MATLAB 5.0 MAT-file, but truncated')
    else:
        scipy.io.savemat(str(path), {'annolist': np.zeros(3)})
    with pytest.raises(mpii.MPIIFormatError) as info:
        mpii_yolo.people_by_image(data_root)
    assert str(path) in str(info.value) and '\n' not in str(info.value)


def test_real_mpii_sample_boxes_and_joints(realdata):
    """mmpose's test_mpii.json (converted MPII, 5 people): the GT boxes of the 10 kept joints lie in the
    images, and each person has > 6 of them labelled (so a detection is all they need)."""
    import json
    from posepile.util import improc
    path = realdata_file(realdata, 'mpii/test_mpii.json')
    selected = mpii_yolo.selected_joint_indices()
    for entry in json.loads(path.read_text()):
        coords = np.array(entry['joints'], np.float64)
        coords[np.array(entry['joints_vis']) == 0] = np.nan
        h, w = improc.image_size_from_header(path.parent / entry['image'])
        box = mpii_yolo.gt_box(coords)
        assert np.isfinite(box).all() and box[2] < 1.3 * w and box[3] < 1.3 * h
        assert np.isfinite(coords[selected, 0]).sum() > 6
        kept = mpii_yolo.match_people([{'coords': coords}], [[*box, 0.9]])
        assert len(kept) == 1
