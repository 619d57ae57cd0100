"""Rendering person meshes (textured scans, SMPL meshes) from random views, as the original's Blender scripts for
thuman2, dfaust and hi4d_rerender do (nlf-era-facts §1.3): 512x512, random camera and lights (views.py), RGBA
composited over grey 127 with alpha -> mask (shading.composite), reproducible (same seed, same bytes).

    mesh = posepile.render.load_obj('0000/0000.obj')
    camera, lights = posepile.render.sample_scene(posepile.render.scene_seed('thuman2', '0000', 7), mesh.vertices)
    rgba = posepile.render.render(mesh, camera, lights, backend='numpy')
    image, mask = posepile.render.composite(rgba)

Backends (`backend=`, default DEFAULT_BACKEND or $POSEPILE_RENDERER):
- 'numpy': the numba z-buffer rasterizer of raster.py (core dependencies only; what CI runs);
- 'opengl': the same shading in an OpenGL 3.3 shader through moderngl on a headless EGL context (Mesa llvmpipe on
  a CPU); optional extra `render` (pip install moderngl);
- 'blender': Blender's Cycles path tracer on the CPU through the `bpy` module (shadows, bounce light; what the
  original used, with 512 samples on a GPU); optional (pip install bpy, in its own environment if bpy pins an old
  numpy). See bench/bench_render.py for speed and looks.
"""
import os

from posepile.render.mesh import Mesh, MeshFormatError, concatenate, load_obj, load_texture, write_obj
from posepile.render.shading import BACKGROUND_GREY, composite
from posepile.render.views import Lights, sample_camera, sample_lights, sample_scene, scene_seed

__all__ = ['Mesh', 'MeshFormatError', 'concatenate', 'load_obj', 'load_texture', 'write_obj', 'composite',
           'BACKGROUND_GREY', 'Lights', 'sample_camera', 'sample_lights', 'sample_scene', 'scene_seed', 'render',
           'BACKENDS', 'DEFAULT_BACKEND', 'RendererUnavailableError', 'backend_available']

BACKENDS = ('numpy', 'opengl', 'blender')
DEFAULT_BACKEND = 'numpy'
INSTALL_HINTS = {'opengl': 'pip install moderngl (and the EGL/OSMesa libraries: apt-get install libegl1 '
                           'libgl1-mesa-dri)',
                 'blender': 'pip install bpy (Blender as a Python module; it needs Python 3.11 and may pin numpy<2: '
                            'use a separate environment)'}


class RendererUnavailableError(RuntimeError):
    """The chosen renderer cannot run here (missing package or no GL context); the message says how to install it."""


def resolve_backend(backend=None):
    backend = backend or os.environ.get('POSEPILE_RENDERER') or DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise ValueError(f'unknown renderer {backend!r}: use one of {", ".join(BACKENDS)}')
    return backend


def backend_available(backend):
    """(True, '') or (False, reason with the install hint)."""
    try:
        if backend == 'opengl':
            from posepile.render import gl
            gl.context()
        elif backend == 'blender':
            import bpy  # noqa: F401
    except Exception as e:  # ImportError, or a GL context that cannot be made
        return False, f'renderer {backend!r} unavailable ({type(e).__name__}: {e}); install: {INSTALL_HINTS[backend]}'
    return True, ''


def render(mesh, camera, lights, image_size=(512, 512), backend=None, **options):
    """(H, W, 4) uint8 RGBA (sRGB, straight alpha) of `mesh` (metres) seen by `camera` (posepile Camera, mm,
    no distortion) under `lights`. `options` go to the backend (numpy: supersampling=2; blender: samples)."""
    backend = resolve_backend(backend)
    if backend == 'numpy':
        from posepile.render.raster import render_rgba
        return render_rgba(mesh, camera, lights, image_size, **options)
    ok, reason = backend_available(backend)
    if not ok:
        raise RendererUnavailableError(reason)
    if backend == 'opengl':
        from posepile.render.gl import render_rgba
        return render_rgba(mesh, camera, lights, image_size, **options)
    from posepile.render.blender import render_rgba
    return render_rgba(mesh, camera, lights, image_size, **options)
