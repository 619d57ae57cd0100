"""MuPoTS-3D: readers of the test set (MultiPersonTestSet/TS{1..20}/annot.mat, v5 MATLAB)."""
from pathlib import Path

import numpy as np

SEQUENCES = tuple(f'TS{i}' for i in range(1, 21))
JOINT_NAMES = 'htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,pelv,spin,head'
ROOT_INDEX = 14
# MATLAB's o1 parents (1-based) and the outward traversal used to rescale bones, as 0-based indices
PARENTS = [p - 1 for p in (2, 16, 2, 3, 4, 2, 6, 7, 15, 9, 10, 15, 12, 13, 15, 15, 2)]
SAFE_TRAVERSAL_ORDER = [j - 1 for j in (15, 16, 2, 1, 17, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)]


class MuPoTSFormatError(ValueError):
    pass


def load_annotations(annot_mat_path):
    """Per frame a list of valid people: dicts with annot2 (17, 2) px, annot3 and univ_annot3 (17, 3) mm
    (camera frame), in annotation order."""
    import scipy.io
    path = Path(annot_mat_path)
    try:
        cells = scipy.io.loadmat(str(path), squeeze_me=False, struct_as_record=False)['annotations']
    except (OSError, ValueError, KeyError, NotImplementedError) as e:
        raise MuPoTSFormatError(f'{path}: cannot read annotations ({e})') from e
    frames = []
    for f in range(cells.shape[0]):
        people = []
        for p in range(cells.shape[1]):
            entry = cells[f, p]
            entry = entry[0, 0] if isinstance(entry, np.ndarray) else entry
            try:
                valid = bool(np.asarray(entry.isValidFrame).reshape(-1)[0])
                if not valid:
                    continue
                people.append(dict(
                    person=p, annot2=np.asarray(entry.annot2, np.float64).reshape(2, 17).T,
                    annot3=np.asarray(entry.annot3, np.float64).reshape(3, 17).T,
                    univ_annot3=np.asarray(entry.univ_annot3, np.float64).reshape(3, 17).T))
            except AttributeError as e:
                raise MuPoTSFormatError(f'{path}: annotation of frame {f}, person {p} lacks a field ({e})') \
                    from None
        frames.append(people)
    return frames


def image_relpath(sequence, frame_index):
    """0-based frame index, as in the image file names."""
    return f'mupots/MultiPersonTestSet/{sequence}/img_{frame_index:06d}.jpg'
