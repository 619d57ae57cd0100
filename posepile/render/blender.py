"""The Blender renderer: Cycles (path tracing: shadows, bounce light) on the CPU through the `bpy` module, what the
original used (512 samples on a GPU). Optional: bpy is imported inside functions (pip install bpy; bpy 5.0 wants
Python 3.11 and pins numpy<2, so install it in its own environment when the project's numpy must stay >= 2).

The scene is built anew for each image: the mesh (smooth shaded, a Diffuse BSDF fed by the texture through the
uv map, or by the vertex colours, or grey), the lights of views.Lights (point lights of radius 0, one disk area
light; the world is black: the ambient term of the rasterizers is not added), a camera with the posepile Camera's
intrinsics (focal length and principal point shift, square pixels, no skew) and pose, a transparent film, the
'Standard' view transform (plain sRGB) and a fixed sampling seed. The RGBA PNG Blender writes is read back.
"""
import tempfile
from pathlib import Path

import numpy as np

DEFAULT_SAMPLES = 64
SENSOR_WIDTH_MM = 36.0


def render_rgba(mesh, camera, lights, image_size=(512, 512), samples=DEFAULT_SAMPLES, seed=0, threads=0,
                denoise=False):
    """(H, W, 4) uint8 RGBA (sRGB, straight alpha) rendered by Cycles on the CPU."""
    import bpy
    import cv2
    height, width = image_size
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    _add_mesh(bpy, scene, mesh)
    _add_lights(bpy, scene, lights)
    _add_camera(bpy, scene, camera, height, width)
    world = bpy.data.worlds.new('black')
    world.use_nodes = True
    world.node_tree.nodes['Background'].inputs['Strength'].default_value = 0.0
    scene.world = world
    scene.render.engine = 'CYCLES'
    scene.cycles.device = 'CPU'
    scene.cycles.samples = int(samples)
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.seed = int(seed)
    scene.cycles.use_denoising = bool(denoise)
    if threads:
        scene.render.threads_mode, scene.render.threads = 'FIXED', int(threads)
    scene.render.film_transparent = True
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = 'Standard'
    scene.view_settings.look = 'None'
    scene.render.image_settings.file_format = 'PNG'
    scene.render.image_settings.color_mode = 'RGBA'
    scene.render.image_settings.color_depth = '8'
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / 'render.png'
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        bgra = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgra is None or bgra.shape != (height, width, 4):
        raise RuntimeError(f'Blender wrote no {width}x{height} RGBA image')
    return np.ascontiguousarray(bgra[..., [2, 1, 0, 3]])


def _add_mesh(bpy, scene, mesh):
    data = bpy.data.meshes.new('person')
    data.from_pydata(mesh.vertices.tolist(), [], mesh.faces.tolist())
    data.polygons.foreach_set('use_smooth', np.ones(len(mesh.faces), bool))
    material = bpy.data.materials.new('skin')
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()
    output = nodes.new('ShaderNodeOutputMaterial')
    diffuse = nodes.new('ShaderNodeBsdfDiffuse')
    links.new(diffuse.outputs['BSDF'], output.inputs['Surface'])
    if mesh.texture is not None and mesh.face_uvs is not None:
        uv_layer = data.uv_layers.new(name='uv')
        uv_layer.data.foreach_set('uv', mesh.uvs[mesh.face_uvs.reshape(-1)].astype(np.float32).reshape(-1))
        with tempfile.TemporaryDirectory() as folder:  # through a PNG: bpy's pixel buffers need its own numpy
            import cv2
            texture_path = str(Path(folder) / 'texture.png')
            cv2.imwrite(texture_path, np.ascontiguousarray(mesh.texture[..., ::-1]))
            image = bpy.data.images.load(texture_path)
            image.colorspace_settings.name = 'sRGB'
            image.pack()
        node = nodes.new('ShaderNodeTexImage')
        node.image, node.interpolation, node.extension = image, 'Linear', 'EXTEND'
        links.new(node.outputs['Color'], diffuse.inputs['Color'])
    elif mesh.vertex_colors is not None:
        from posepile.render.shading import srgb_to_linear
        attribute = data.color_attributes.new('color', 'FLOAT_COLOR', 'POINT')
        colors = np.ones((len(mesh.vertices), 4), np.float32)
        colors[:, :3] = srgb_to_linear(mesh.vertex_colors)
        attribute.data.foreach_set('color', colors.reshape(-1))
        node = nodes.new('ShaderNodeAttribute')
        node.attribute_name = 'color'
        links.new(node.outputs['Color'], diffuse.inputs['Color'])
    else:
        diffuse.inputs['Color'].default_value = (0.7, 0.7, 0.7, 1.0)
    data.materials.append(material)
    scene.collection.objects.link(bpy.data.objects.new('person', data))


def _add_lights(bpy, scene, lights):
    from mathutils import Matrix, Vector
    for i, light in enumerate(lights.points):
        data = bpy.data.lights.new(f'point{i}', type='POINT')
        data.energy, data.color, data.shadow_soft_size = light.power_w, tuple(light.color), 0.0
        obj = bpy.data.objects.new(f'point{i}', data)
        obj.location = tuple(light.position)
        scene.collection.objects.link(obj)
    area = lights.area
    data = bpy.data.lights.new('area', type='AREA')
    data.shape, data.size = 'DISK', 2 * area.radius_m
    data.energy, data.color = area.power_w, tuple(area.color)
    obj = bpy.data.objects.new('area', data)
    # the area light emits along its local -z: turn -z onto the light's normal
    z = -Vector(tuple(area.normal))
    obj.matrix_world = Matrix.Translation(Vector(tuple(area.position))) @ z.to_track_quat('Z', 'Y').to_matrix() \
        .to_4x4()
    scene.collection.objects.link(obj)


def _add_camera(bpy, scene, camera, height, width):
    from mathutils import Matrix
    K = np.asarray(camera.intrinsic_matrix, np.float64)
    if abs(K[0, 1]) > 1e-9 or not np.isclose(K[0, 0], K[1, 1]):
        raise ValueError('the Blender renderer takes square pixels without skew')
    data = bpy.data.cameras.new('camera')
    data.sensor_fit, data.sensor_width = 'HORIZONTAL' if width >= height else 'VERTICAL', SENSOR_WIDTH_MM
    data.lens = K[0, 0] * SENSOR_WIDTH_MM / max(width, height)
    # Blender puts the principal point at the image centre ((W - 1) / 2 in posepile's pixel-centre convention)
    data.shift_x = -(K[0, 2] - (width - 1) / 2) / max(width, height)
    data.shift_y = (K[1, 2] - (height - 1) / 2) / max(width, height)
    data.clip_start, data.clip_end = 0.01, 1000.0
    obj = bpy.data.objects.new('camera', data)
    R = np.asarray(camera.R, np.float64)  # rows: right, down, forward (world frame)
    cam_to_world = np.eye(4)
    cam_to_world[:3, 0], cam_to_world[:3, 1], cam_to_world[:3, 2] = R[0], -R[1], -R[2]  # Blender: x, y up, -z view
    cam_to_world[:3, 3] = np.asarray(camera.t, np.float64) / 1000
    obj.matrix_world = Matrix(cam_to_world.tolist())
    scene.collection.objects.link(obj)
    scene.camera = obj
