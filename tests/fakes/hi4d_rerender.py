"""A tiny Hi4D release for the re-render recipe: pair00/hug00 with meta.npz, smpl/<frame:06d>.npz and the textured
scans frames/mesh-f<frame:05d>.obj + MatLib-F<frame:05d>.mtl + Atlas-F<frame:05d>.png, with toy gendered SMPL
models (tests/fakes/dfaust.py's person-shaped toy body) in $DATA_ROOT/body_models/smpl.

Layout evidence: the official toolkit's dataset.md (github.com/yifeiyin04/Hi4D: frames/ holds Atlas-F00XXX.png,
MatLib-F00XXX.mtl, mesh-f00XXX.obj; smpl/000XXX.npz holds betas (2, 10), body_pose (2, 69), global_orient (2, 3),
transl (2, 3), joints_3d (2, 24, 3), verts (2, 6890, 3), contact (2, 6890)) and visualize_hi4d.py (scans and SMPL
drawn in one scene, no transform: same frame and unit). The real release also has cameras/, images/ and seg/
(tests/fakes/hi4d.py writes them); this recipe does not read them. No real Hi4D file is public.

The scan of a frame is the two people's toy SMPL meshes, textured from one atlas (each person's uv strips
shifted into its half), so the true silhouette of a render is known exactly.
"""
from pathlib import Path

import numpy as np

from tests.fakes import dfaust as toy

SEQUENCE = 'pair00/hug00'
FRAMES = (10, 11)
GENDERS = ('female', 'male')
PERSON_OFFSETS_M = ((-0.4, 0.95, 0.0), (0.4, 0.95, 0.15))


def write_fake_release(data_root, seed=0):
    """Returns {'frames': {frame: [dict(pose (72,), betas (10,), transl (3,), vertices (V, 3), joints (24, 3))
    per person]}, 'faces': (F, 3) of one person, 'genders'}."""
    import cv2

    from posepile.bodymodels import load
    from posepile.render import Mesh, concatenate, write_obj
    data_root = Path(data_root)
    seq_dir = data_root / 'hi4d' / SEQUENCE
    rng = np.random.default_rng(seed)
    models, uvs = {}, None
    for i, gender in enumerate(('female', 'male')):
        _, uvs = toy.write_toy_body(data_root / 'body_models', gender, seed=20 + i, n_shape=10)
        models[gender] = load('smpl', gender, data_root / 'body_models')
    betas = [rng.normal(0, 1, 10) for _ in GENDERS]
    seq_dir.mkdir(parents=True, exist_ok=True)
    np.savez(seq_dir / 'meta.npz', start=FRAMES[0], end=FRAMES[-1], num_persons=2, genders=np.array(GENDERS),
             betas=np.stack(betas), contact_ids=np.array([FRAMES[0]]), mono_cam=4)
    faces = models['female'].faces
    result = {'frames': {}, 'faces': faces, 'genders': GENDERS}
    for frame in FRAMES:
        people = []
        for p, gender in enumerate(GENDERS):
            model = models[gender]
            pose = rng.normal(0, 0.2, 72)
            pose[:3] = (0, rng.uniform(-np.pi, np.pi), 0)
            transl = np.array(PERSON_OFFSETS_M[p]) + rng.normal(0, 0.03, 3)
            out = model(pose[None], betas[p][None], transl[None])
            people.append(dict(pose=pose, betas=betas[p], transl=transl, vertices=out['vertices'][0].astype(np.float64),
                               joints=out['joints'][0]))
        data = {'global_orient': np.stack([q['pose'][:3] for q in people]),
                'body_pose': np.stack([q['pose'][3:] for q in people]),
                'betas': np.stack([q['betas'] for q in people]), 'transl': np.stack([q['transl'] for q in people]),
                'joints_3d': np.stack([q['joints'] for q in people]),
                'verts': np.stack([q['vertices'] for q in people]),
                'contact': np.zeros((2, len(people[0]['vertices'])))}
        data = {k: v.astype(np.float32) for k, v in data.items()}
        (seq_dir / 'smpl').mkdir(exist_ok=True)
        np.savez(seq_dir / 'smpl' / f'{frame:06d}.npz', **data)
        # what the recipe reads back (float32)
        for q, pose, b, t, joints in zip(people, np.concatenate([data['global_orient'], data['body_pose']], 1),
                                         data['betas'], data['transl'], data['joints_3d']):
            q.update(pose=pose.astype(np.float64), betas=b.astype(np.float64), transl=t.astype(np.float64),
                     joints=joints.astype(np.float64))
        atlas = toy.texture_image(seed + frame, 256)
        parts = []
        for p, q in enumerate(people):
            person_uvs = uvs.copy()
            person_uvs[:, 1] = (person_uvs[:, 1] + p) / 2  # person p in half p of the atlas
            parts.append(Mesh(q['vertices'], faces, person_uvs.astype(np.float32), faces.copy(), atlas))
        scan = concatenate(parts)
        write_obj(seq_dir / 'frames' / f'mesh-f{frame:05d}.obj', scan, texture_name=f'Atlas-F{frame:05d}.png',
                  mtl_name=f'MatLib-F{frame:05d}.mtl')
        assert cv2.imread(str(seq_dir / 'frames' / f'Atlas-F{frame:05d}.png')) is not None
        result['frames'][frame] = people
    return result
