"""A tiny MPI-INF-3DHP training release for MuCo-3DHP (whose own release is made by compositing 3DHP):
four subjects S1-S4 (Seq1), the 8 training cameras, FGmasks videos, ChairMasks for S2. Each subject's
silhouette is painted into the red channel of its frames at its own level (BODY_LEVELS), so that a composite
shows whose pixels won; the joint dots are in all channels (measured in green)."""
from tests.fakes import tdhp as fake_tdhp

SUBJECTS = ('S1', 'S2', 'S3', 'S4')
BODY_LEVELS = {'S1': 90, 'S2': 140, 'S3': 190, 'S4': 240}
START_X_MM = {'S1': -500.0, 'S2': -150.0, 'S3': 200.0, 'S4': 550.0}
CHAIR_SUBJECTS = ('S2',)


def write_fake_release(root, n_frames=10, size=(512, 512)):
    """Writes $root/S{1-4}/Seq1/...; returns {subject: world poses (N, 28, 3) mm, raw 3DHP joint order}."""
    from posepile.ds.tdhp import main as tdhp
    worlds = {}
    for i, subject in enumerate(SUBJECTS):
        worlds[subject] = fake_tdhp.write_train_sequence(
            root, subject=subject, n_frames=n_frames, size=size, seed=i, cameras=tdhp.TRAIN_CAMERAS,
            chairs=subject in CHAIR_SUBJECTS, body_level=BODY_LEVELS[subject], start_x=START_X_MM[subject])
    return worlds
