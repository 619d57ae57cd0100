"""A tiny MuPoTS-3D test set: MultiPersonTestSet/TS{1..20}/annot.mat (v5 MATLAB) holding the cell
annotations{frame, person} of structs with annot2 (2x17), annot3 (3x17), univ_annot3 (3x17), isValidFrame.

Layout and quirk from the real TS1 and TS13 files (/work/shared/realdata/mupots, SOURCES.md): annot2 is the
pinhole projection of annot3 (camera frame, mm) except the 2D spine (joint 15), which lies about 200 px above
its true place in TS1 and TS2 and in part of TS7. The images show the joints where they really are (the true
projection), so a camera fitted on the wrong 2D spine misplaces every joint in the crops.
"""
from pathlib import Path

import numpy as np

TRUE_FOCAL_PX = (1497.0, 1495.0)
TRUE_CENTER_PX = (1017.0, 1043.0)
SPINE = 15
WRONG_SPINE_SEQUENCES = ('TS1', 'TS2')  # every person; TS7: person 0 only
WRONG_SPINE_OFFSET_PX = (-35.0, -200.0)


def _pose(rng, person):
    """People stand side by side, 2 m apart, so that their 2D poses do not overlap."""
    base = rng.normal(0, 250, (17, 3))
    return base + [-2000 + 2000 * person + rng.uniform(-200, 200), 0, rng.uniform(4000, 6000)]


def write_fake_release(root, seed=0, n_frames=3, n_people=3):
    """Returns {sequence: [[dict(annot2, annot3, univ_annot3, valid) per person] per frame]}."""
    import scipy.io
    rng = np.random.default_rng(seed)
    written = {}
    for s in range(1, 21):
        sequence = f'TS{s}'
        cells = np.empty((n_frames, n_people), dtype=object)
        frames = []
        for f in range(n_frames):
            people = []
            for p in range(n_people):
                univ = _pose(rng, p)
                metric = univ * 1.05
                true_pixels = metric[:, :2] / metric[:, 2:] * TRUE_FOCAL_PX + TRUE_CENTER_PX
                annot2 = true_pixels.copy()
                if sequence in WRONG_SPINE_SEQUENCES or (sequence == 'TS7' and p == 0):
                    annot2[SPINE] += WRONG_SPINE_OFFSET_PX
                valid = not (p == n_people - 1 and f == 0)  # the last person is not annotated in frame 0
                cells[f, p] = {'annot2': annot2.T, 'annot3': metric.T, 'univ_annot3': univ.T,
                               'isValidFrame': np.array([[float(valid)]])}
                people.append(dict(annot2=annot2, annot3=metric, univ_annot3=univ, valid=valid,
                                   true_pixels=true_pixels))
            frames.append(people)
        folder = Path(root) / 'MultiPersonTestSet' / sequence
        folder.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(str(folder / 'annot.mat'), {'annotations': cells})
        occlusion = np.empty((n_frames, n_people), dtype=object)
        for f in range(n_frames):
            for p in range(n_people):
                occlusion[f, p] = (np.arange(17) % (3 + p) == 0).astype(np.float64)[np.newaxis]  # 1x17
        scipy.io.savemat(str(folder / 'occlusion.mat'), {'occlusion_labels': occlusion})
        written[sequence] = frames
    return written


def write_images(root, written, size=(2048, 2048)):
    """TS*/img_%06d.jpg (0-based) with a dot where each joint of every annotated person really is (the true
    projection, not annot2), TS1-5 size."""
    from posepile.util import improc
    width, height = size
    for sequence, frames in written.items():
        for f, people in enumerate(frames):
            canvas = np.full((height, width), 45.0, np.float32)
            for person in people:
                if not person['valid']:
                    continue
                for u, v in person['true_pixels']:
                    if 12 <= u < width - 12 and 12 <= v < height - 12:
                        y0, x0 = int(v) - 10, int(u) - 10
                        ys, xs = np.mgrid[y0:y0 + 21, x0:x0 + 21]
                        canvas[y0:y0 + 21, x0:x0 + 21] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / 12)
            image = np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
            improc.write_jpeg_atomic(Path(root) / 'MultiPersonTestSet' / sequence / f'img_{f:06d}.jpg', image, 95)
