"""Top-down PNG of a scene: room, furniture, objects (with ids), robot, goals and paths."""

import math

from leo_ros.sim.scene import COLORS, FURNITURE_CATEGORIES
import matplotlib

matplotlib.use('Agg')  # headless
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, FancyArrow, Polygon, Rectangle  # noqa: E402,I100


def draw_topdown(scene, path, robot_pose=None, goals=(), paths=(), title=None,
                 robot_radius=0.22, dpi=110):
    """
    Save a top-down view of a scene as PNG.

    :param scene: a :class:`leo_ros.sim.scene.Scene`
    :param path: output file
    :param robot_pose: (x, y, yaw) or None
    :param goals: (x, y, yaw) poses drawn as arrows with stars
    :param paths: (N, 2) polylines
    :return: the path written
    """
    fig, ax = plt.subplots(figsize=(6, 6 * scene.depth / scene.width + 0.4))
    ax.add_patch(Rectangle((0, 0), scene.width, scene.depth, facecolor=(0.93, 0.9, 0.84),
                           edgecolor='black', linewidth=3))
    objects = sorted(scene.objects.values(),
                     key=lambda o: (o.category not in FURNITURE_CATEGORIES, o.z))
    for obj in objects:
        furniture = obj.category in FURNITURE_CATEGORIES
        ax.add_patch(Polygon(obj.corners(), closed=True, facecolor=COLORS[obj.color],
                             edgecolor='black', alpha=0.55 if furniture else 0.95,
                             linewidth=1.0 if furniture else 0.6))
        label = f'{obj.id} {obj.category}' if furniture else str(obj.id)
        ax.text(obj.x, obj.y, label, fontsize=7 if furniture else 6, ha='center',
                va='center', color='black' if obj.color not in ('black', 'blue', 'purple')
                else 'white')
    for line in paths:
        if line is not None and len(line):
            ax.plot(line[:, 0], line[:, 1], '--', color='tab:blue', linewidth=1)
    for gx, gy, gyaw in goals:
        ax.plot(gx, gy, '*', color='gold', markeredgecolor='black', markersize=14)
        ax.add_patch(FancyArrow(gx, gy, 0.3 * math.cos(gyaw), 0.3 * math.sin(gyaw),
                                width=0.02, color='goldenrod'))
    if robot_pose is not None:
        x, y, yaw = robot_pose
        ax.add_patch(Circle((x, y), robot_radius, facecolor='tab:cyan', edgecolor='black'))
        ax.add_patch(FancyArrow(x, y, 0.35 * math.cos(yaw), 0.35 * math.sin(yaw),
                                width=0.04, color='black'))
    ax.set_xlim(-0.2, scene.width + 0.2)
    ax.set_ylim(-0.2, scene.depth + 0.2)
    ax.set_aspect('equal')
    ax.set_xlabel('x [m]')
    ax.set_ylabel('y [m]')
    ax.set_title(title or f'scene {scene.seed}')
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def draw_frame(frame, path, dpi=100):
    """
    Save a rendered frame as PNG: colour, depth and instance ids side by side.

    :param frame: a :class:`leo_ros.sim.render.Frame`
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].imshow(frame.rgb)
    axes[0].set_title('camera/image')
    shown = axes[1].imshow(frame.depth, cmap='viridis')
    fig.colorbar(shown, ax=axes[1], fraction=0.035, label='depth [m]')
    axes[1].set_title('camera/depth (NaN: no return)')
    axes[2].imshow(frame.instance_ids, cmap='tab20', interpolation='nearest')
    axes[2].set_title('instance ids (0 floor/walls, -1 none)')
    for ax in axes:
        ax.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
