"""
A depth-camera model for the simulator: Kinect / RealSense-like depth from exact depth (no ROS).

Ray-cast depth is exact; a structured-light or active-stereo camera's is not. With
``SensorConfig.enabled`` the renderer passes its exact depth through :func:`apply_sensor`:

- **noise** in inverse depth (disparity), so its std in depth grows with distance squared:
  ``sigma(z) = noise_at_1m * z**2``; spatially correlated over ``noise_correlation`` pixels,
  as block matching makes it;
- **quantisation** of the disparity, so depth comes in steps of ``quantization_at_1m * z**2``
  (Kinect v1: about 2.7 mm at 1 m and 2.4 cm at 3 m);
- **missing returns** (NaN): in the projector's shadow beside every foreground edge (the
  renderer casts it from a projector ``baseline`` to the camera's right), in a band at depth
  edges, on dark surfaces (more so far away), on shiny surfaces and at grazing incidence, in
  blobs rather than single pixels, plus a little isolated speckle;
- **per-frame jitter**: a frame-wide disparity offset, and every random draw above is new each
  frame (holes flicker at edges, as on the real sensors).

Defaults are Kinect v1-like (Khoshelham and Elberink 2012; Nguyen et al. 2012). The model is
off by default (``SensorConfig()``): worlds render exact depth unless a caller turns it on.
"""

from dataclasses import dataclass, fields
import math

import numpy as np
from scipy import ndimage, special


@dataclass
class SensorConfig:
    """
    Depth-camera imperfections; distances in metres, angles in degrees.

    :param enabled: False: exact depth (the renderer does not call the model)
    :param noise_at_1m: depth noise std at 1 m [m]; grows with depth squared
    :param quantization_at_1m: depth step at 1 m [m]; grows with depth squared (0: none)
    :param noise_correlation: std of the Gaussian that correlates the noise [pixels] (0: white)
    :param frame_jitter_at_1m: std of a per-frame depth offset at 1 m [m], times depth squared
    :param baseline: projector to camera distance along the camera's x axis [m]; surfaces the
        projector does not see have no depth (0: no shadows)
    :param edge_step: relative depth step between neighbours that makes a depth edge
    :param edge_width: half-width of the band around depth edges that may lose returns [px]
    :param edge_dropout: probability that a pixel in that band has no depth in a frame
    :param dark_albedo: surfaces whose brightness / depth^2 is below this lose returns
    :param dark_dropout: share of a black surface (brightness 0) without depth
    :param shiny_fraction: share of objects whose surface is shiny (chosen per object id)
    :param shiny_dropout: share of a shiny surface without depth
    :param grazing_start_deg: incidence angle where returns start to fail
    :param grazing_end_deg: incidence angle beyond which no return comes back
    :param blob_size: correlation length of the holes on dark and shiny surfaces [px]
    :param speckle: share of isolated missing pixels anywhere
    :param seed: seed of the per-object shiny draw
    """

    enabled: bool = False
    noise_at_1m: float = 0.0015
    quantization_at_1m: float = 0.0027
    noise_correlation: float = 1.0
    frame_jitter_at_1m: float = 0.001
    baseline: float = 0.075
    edge_step: float = 0.03
    edge_width: int = 1
    edge_dropout: float = 0.2
    dark_albedo: float = 0.1
    dark_dropout: float = 0.3
    shiny_fraction: float = 0.1
    shiny_dropout: float = 0.2
    grazing_start_deg: float = 75.0
    grazing_end_deg: float = 88.0
    blob_size: float = 8.0
    speckle: float = 0.001
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.enabled, (bool, np.bool_)):
            raise ValueError(f'SensorConfig.enabled must be a bool, got {self.enabled!r}')
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in ('enabled', 'baseline', 'seed'):
                continue
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f'SensorConfig.{item.name} must be a finite number >= 0, '
                                 f'got {value!r}')
        if not (isinstance(self.baseline, (int, float)) and math.isfinite(self.baseline)
                and abs(self.baseline) < 1.0):
            raise ValueError(f'SensorConfig.baseline must be finite and under 1 m, '
                             f'got {self.baseline!r}')
        for name in ('edge_dropout', 'dark_dropout', 'shiny_fraction', 'shiny_dropout',
                     'speckle'):
            if getattr(self, name) > 1.0:
                raise ValueError(f'SensorConfig.{name} must be in [0, 1], '
                                 f'got {getattr(self, name)!r}')
        if not isinstance(self.edge_width, (int, np.integer)):
            raise ValueError(f'SensorConfig.edge_width must be an integer, got '
                             f'{self.edge_width!r}')
        if not self.grazing_start_deg < self.grazing_end_deg <= 90.0:
            raise ValueError('SensorConfig.grazing_end_deg must be above grazing_start_deg and '
                             f'at most 90, got {self.grazing_start_deg!r}, '
                             f'{self.grazing_end_deg!r}')


@dataclass
class Surface:
    """What the sensor needs to know about the surface seen in each pixel, all (H, W)."""

    albedo: np.ndarray          # float32 brightness of the unlit surface colour in [0, 1]
    cos_incidence: np.ndarray   # float32 |cos| of the angle between ray and surface normal
    shiny: np.ndarray           # bool: the surface belongs to a shiny object
    shadow: np.ndarray          # bool: the projector does not see it


def shiny_instances(instance_ids, config: SensorConfig) -> np.ndarray:
    """
    Return which pixels belong to a shiny object; the draw is fixed per object id and seed.

    Ids <= 0 (floor, walls, nothing) are never shiny.

    :param instance_ids: (H, W) int
    :return: (H, W) bool
    """
    instance_ids = np.asarray(instance_ids)
    shiny = np.zeros(instance_ids.shape, bool)
    if config.shiny_fraction <= 0:
        return shiny
    for object_id in np.unique(instance_ids[instance_ids > 0]):
        draw = np.random.default_rng([int(config.seed), int(object_id)]).random()
        if draw < config.shiny_fraction:
            shiny |= instance_ids == object_id
    return shiny


def apply_sensor(depth, surface: Surface, config: SensorConfig, rng) -> np.ndarray:
    """
    Turn exact depth into what the modelled camera measures.

    :param depth: (H, W) float32 exact depth [m], NaN where nothing was hit
    :param surface: per-pixel surface facts (:class:`Surface`)
    :param config: the sensor
    :param rng: numpy Generator; every call draws new noise (one call per frame)
    :return: (H, W) float32 depth [m], NaN where the camera has no return
    """
    depth = np.asarray(depth, np.float32)
    hit = np.isfinite(depth) & (depth > 0)
    with np.errstate(divide='ignore', invalid='ignore'):
        inverse = np.where(hit, 1.0 / depth, 0.0).astype(np.float32)         # (H, W) [1/m]
    inverse += _correlated_noise(depth.shape, config.noise_correlation, rng) \
        * np.float32(config.noise_at_1m)
    inverse += np.float32(rng.normal(0.0, config.frame_jitter_at_1m))
    if config.quantization_at_1m > 0:
        step = np.float32(config.quantization_at_1m)
        inverse = np.round(inverse / step) * step
    valid = hit & (inverse > 0)
    measured = np.where(valid, 1.0 / np.where(valid, inverse, 1.0), np.nan).astype(np.float32)
    missing = missing_returns(depth, hit, surface, config, rng)
    return np.where(missing, np.float32(np.nan), measured)


def missing_returns(depth, hit, surface: Surface, config: SensorConfig, rng) -> np.ndarray:
    """
    Return which pixels get no depth this frame.

    :param depth: (H, W) exact depth, NaN where nothing was hit
    :param hit: (H, W) bool finite exact depth
    :return: (H, W) bool
    """
    shape = depth.shape
    missing = surface.shadow & hit
    if config.edge_dropout > 0 and config.edge_width > 0:
        band = ndimage.binary_dilation(depth_edges(depth, hit, config.edge_step),
                                       iterations=int(config.edge_width)) & hit
        missing |= band & (rng.random(shape) < config.edge_dropout)
    start = math.cos(math.radians(config.grazing_start_deg))
    end = math.cos(math.radians(config.grazing_end_deg))
    graze = np.clip((start - surface.cos_incidence) / max(start - end, 1e-6), 0.0, 1.0)
    with np.errstate(divide='ignore', invalid='ignore'):
        signal = surface.albedo / np.where(hit, depth, 1.0) ** 2            # (H, W)
    dark = config.dark_dropout * np.clip(1.0 - signal / max(config.dark_albedo, 1e-6), 0, 1) \
        if config.dark_albedo > 0 else np.zeros(shape, np.float32)
    shiny = np.where(surface.shiny, np.float32(config.shiny_dropout), np.float32(0))
    # Probabilities of independent causes combine; holes come in blobs (a smooth field).
    chance = 1.0 - (1.0 - graze) * (1.0 - dark) * (1.0 - shiny)            # (H, W)
    if chance.max(initial=0.0) > 0:
        missing |= hit & (_uniform_blobs(shape, config.blob_size, rng) < chance)
    if config.speckle > 0:
        missing |= hit & (rng.random(shape) < config.speckle)
    return missing


def depth_edges(depth, hit, relative_step) -> np.ndarray:
    """
    Return pixels beside a depth discontinuity or beside a pixel with no hit.

    :param depth: (H, W) depth, NaN where nothing was hit
    :param relative_step: a step larger than this share of the nearer depth is an edge
    :return: (H, W) bool, True on both sides of each edge
    """
    filled = np.where(hit, depth, np.float32(0))
    edges = np.zeros(depth.shape, bool)
    for axis in (0, 1):
        a = np.swapaxes(filled, 0, axis)
        near = np.minimum(a[1:], a[:-1])
        step = (np.abs(a[1:] - a[:-1]) > relative_step * near) | (near <= 0)
        step &= np.maximum(a[1:], a[:-1]) > 0                               # not both empty
        view = np.swapaxes(edges, 0, axis)
        view[1:] |= step
        view[:-1] |= step
    return edges


def _correlated_noise(shape, correlation, rng) -> np.ndarray:
    """Return (H, W) float32 Gaussian noise of unit std, correlated over ``correlation`` px."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    if correlation <= 0:
        return noise
    smooth = ndimage.gaussian_filter(noise, correlation, mode='reflect')
    return smooth / max(float(smooth.std()), 1e-6)


def _uniform_blobs(shape, size, rng) -> np.ndarray:
    """
    Return a smooth (H, W) random field with uniform values in [0, 1].

    Thresholding it at p marks about a share p of the pixels, in blobs of about ``size`` px.
    """
    if size <= 1:
        return rng.random(shape, dtype=np.float32)
    coarse_shape = tuple(max(2, int(math.ceil(n / size)) + 1) for n in shape)
    coarse = rng.standard_normal(coarse_shape, dtype=np.float32)
    field = ndimage.zoom(coarse, (shape[0] / coarse_shape[0], shape[1] / coarse_shape[1]),
                         order=1, mode='nearest', grid_mode=True)[:shape[0], :shape[1]]
    field = field / max(float(field.std()), 1e-6)
    return special.ndtr(field).astype(np.float32)
