"""The OpenGL renderer: the shading of shading.py in an OpenGL 3.3 shader through moderngl, on a headless context
(EGL first, then OSMesa; on a machine without a GPU Mesa's llvmpipe rasterizes on the CPU). Optional: moderngl is
imported inside functions (pip install moderngl).

The scene goes in unindexed (three corners per triangle, so uv seams need no vertex splitting), is rasterized at
`supersampling` times the resolution into a float framebuffer holding linear colour and coverage, and is averaged
and sRGB-encoded by the same numpy code as the numpy backend (raster.py), so both give the same image up to
rasterization rules at triangle edges and float32 arithmetic.
"""
import functools

import numpy as np

from posepile.render.shading import AREA_SAMPLES, area_light_points, linear_to_srgb_uint8, srgb_to_linear

MAX_POINT_LIGHTS = 16
NEAR_M, FAR_M = 0.01, 1000.0

VERTEX_SHADER = '''
#version 330
uniform mat4 projection;  // world (m) -> clip
in vec3 in_position;
in vec3 in_normal;
in vec2 in_uv;
in vec3 in_color;
out vec3 position;
out vec3 normal;
out vec2 uv;
out vec3 color;
void main() {
    position = in_position; normal = in_normal; uv = in_uv; color = in_color;
    gl_Position = projection * vec4(in_position, 1.0);
}
'''

FRAGMENT_SHADER = '''
#version 330
uniform vec3 eye;
uniform int n_points;
uniform vec3 point_positions[%(max_points)d];
uniform vec3 point_colors[%(max_points)d];
uniform float point_powers[%(max_points)d];
uniform vec3 area_points[%(area_samples)d];
uniform vec3 area_normal;
uniform vec3 area_color;
uniform float area_power;
uniform float ambient;
uniform int use_texture;
uniform sampler2D albedo_texture;
in vec3 position;
in vec3 normal;
in vec2 uv;
in vec3 color;
out vec4 out_color;
const float PI = 3.14159265358979;
vec3 srgb_to_linear(vec3 c) {
    return mix(c / 12.92, pow((c + 0.055) / 1.055, vec3(2.4)), step(vec3(0.04045), c));
}
void main() {
    vec3 n = normalize(normal);
    if (dot(n, eye - position) < 0.0) n = -n;
    vec3 albedo = use_texture == 1 ? srgb_to_linear(texture(albedo_texture, vec2(uv.x, 1.0 - uv.y)).rgb) : color;
    vec3 light = vec3(ambient);
    for (int i = 0; i < n_points; ++i) {
        vec3 to_light = point_positions[i] - position;
        float d2 = dot(to_light, to_light);
        float c = max(dot(n, to_light) / sqrt(d2), 0.0);
        light += point_powers[i] / (4.0 * PI * PI) * c / d2 * point_colors[i];
    }
    for (int i = 0; i < %(area_samples)d; ++i) {
        vec3 to_light = area_points[i] - position;
        float d2 = dot(to_light, to_light);
        float d = sqrt(d2);
        float cr = max(dot(n, to_light) / d, 0.0);
        float ce = max(-dot(to_light, area_normal) / d, 0.0);
        light += area_power / %(area_samples)d.0 / (PI * PI) * cr * ce / d2 * area_color;
    }
    out_color = vec4(albedo * light, 1.0);
}
''' % {'max_points': MAX_POINT_LIGHTS, 'area_samples': AREA_SAMPLES}


@functools.lru_cache(maxsize=1)
def context():
    """A headless moderngl context (EGL, else OSMesa), made once per process."""
    import moderngl
    errors = []
    for backend in ('egl', 'osmesa'):
        try:
            return moderngl.create_standalone_context(backend=backend)
        except Exception as e:  # no such library / no device
            errors.append(f'{backend}: {e}')
    raise RuntimeError('no headless OpenGL context: ' + '; '.join(errors))


@functools.lru_cache(maxsize=1)
def _program():
    return context().program(vertex_shader=VERTEX_SHADER, fragment_shader=FRAGMENT_SHADER)


def projection_matrix(camera, height, width, supersampling):
    """(4, 4) world (m) -> clip matrix of a posepile Camera for an image of (height, width) * supersampling, rows
    read top-down (the framebuffer is flipped on reading)."""
    s = supersampling
    K = np.array(camera.intrinsic_matrix, np.float64)
    K[:2] *= s
    K[:2, 2] += (s - 1) / 2
    W, H = width * s, height * s
    proj = np.zeros((4, 4))
    proj[0, 0], proj[0, 1], proj[0, 2] = 2 * K[0, 0] / W, 2 * K[0, 1] / W, 2 * (K[0, 2] + 0.5) / W - 1
    proj[1, 1], proj[1, 2] = -2 * K[1, 1] / H, 1 - 2 * (K[1, 2] + 0.5) / H
    proj[2, 2], proj[2, 3] = (FAR_M + NEAR_M) / (FAR_M - NEAR_M), -2 * FAR_M * NEAR_M / (FAR_M - NEAR_M)
    proj[3, 2] = 1
    extrinsic = np.eye(4)
    extrinsic[:3, :3] = camera.R
    extrinsic[:3, 3] = -np.asarray(camera.R) @ (np.asarray(camera.t, np.float64) / 1000)
    return proj @ extrinsic


def render_rgba(mesh, camera, lights, image_size=(512, 512), supersampling=2):
    """(H, W, 4) uint8 RGBA like posepile.render.raster.render_rgba, rasterized by OpenGL."""
    import moderngl

    from posepile.render.raster import vertex_normals
    if len(lights.points) > MAX_POINT_LIGHTS:
        raise ValueError(f'{len(lights.points)} point lights: the OpenGL renderer takes at most {MAX_POINT_LIGHTS}')
    ctx, program = context(), _program()
    height, width = image_size
    s = int(supersampling)
    corners = mesh.faces.reshape(-1)
    n = len(corners)
    positions = mesh.vertices[corners].astype(np.float32)
    normals = vertex_normals(mesh.vertices, mesh.faces)[corners].astype(np.float32)
    textured = mesh.texture is not None and mesh.face_uvs is not None
    uvs = mesh.uvs[mesh.face_uvs.reshape(-1)].astype(np.float32) if textured else np.zeros((n, 2), np.float32)
    if mesh.vertex_colors is not None and not textured:
        colors = srgb_to_linear(mesh.vertex_colors[corners]).astype(np.float32)
    else:
        colors = np.full((n, 3), 0.7, np.float32)
    data = np.concatenate([positions, normals, uvs, colors], axis=1)
    resources = []
    try:
        vbo = ctx.buffer(np.ascontiguousarray(data).tobytes())
        resources.append(vbo)
        vao = ctx.vertex_array(program, [(vbo, '3f 3f 2f 3f', 'in_position', 'in_normal', 'in_uv', 'in_color')])
        resources.append(vao)
        color_rb = ctx.renderbuffer((width * s, height * s), components=4, dtype='f4')
        depth_rb = ctx.depth_renderbuffer((width * s, height * s))
        fbo = ctx.framebuffer(color_attachments=[color_rb], depth_attachment=depth_rb)
        resources += [color_rb, depth_rb, fbo]
        if textured:
            texture = ctx.texture(mesh.texture.shape[1::-1], 3, np.ascontiguousarray(mesh.texture).tobytes())
            texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
            texture.repeat_x = texture.repeat_y = False
            texture.use(0)
            resources.append(texture)
        program['projection'].write(projection_matrix(camera, height, width, s).T.astype('f4').tobytes())
        program['eye'].value = tuple(np.asarray(camera.t, np.float64) / 1000)
        points = np.zeros((MAX_POINT_LIGHTS, 3), 'f4')
        point_colors = np.zeros((MAX_POINT_LIGHTS, 3), 'f4')
        powers = np.zeros(MAX_POINT_LIGHTS, 'f4')
        for i, light in enumerate(lights.points):
            points[i], point_colors[i], powers[i] = light.position, light.color, light.power_w
        _set(program, 'n_points', len(lights.points))
        _write(program, 'point_positions', points)
        _write(program, 'point_colors', point_colors)
        _write(program, 'point_powers', powers)
        _write(program, 'area_points', area_light_points(lights.area).astype('f4'))
        _set(program, 'area_normal', tuple(lights.area.normal))
        _set(program, 'area_color', tuple(lights.area.color))
        _set(program, 'area_power', lights.area.power_w)
        _set(program, 'ambient', lights.ambient)
        _set(program, 'use_texture', int(textured))
        _set(program, 'albedo_texture', 0)
        fbo.use()
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.disable(moderngl.CULL_FACE)
        fbo.clear(0, 0, 0, 0, depth=1.0)
        vao.render(moderngl.TRIANGLES)
        pixels = np.frombuffer(fbo.read(components=4, dtype='f4'), np.float32)
    finally:
        for resource in reversed(resources):
            resource.release()
    samples = pixels.reshape(height * s, width * s, 4)[::-1].astype(np.float64)
    covered = samples[..., 3] > 0.5
    sums = (samples[..., :3] * covered[..., None]).reshape(height, s, width, s, 3).sum(axis=(1, 3))
    counts = covered.reshape(height, s, width, s).sum(axis=(1, 3))
    rgba = np.empty((height, width, 4), np.uint8)
    rgba[..., :3] = linear_to_srgb_uint8(sums / np.maximum(counts, 1)[..., None])
    rgba[..., 3] = np.round(counts * (255 / (s * s))).astype(np.uint8)
    return rgba


def _set(program, name, value):
    if name in program:  # the GLSL compiler drops unused uniforms
        program[name].value = value


def _write(program, name, array):
    if name in program:
        program[name].write(np.ascontiguousarray(array).tobytes())
