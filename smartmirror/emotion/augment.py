"""Training augmentations for the emotion model (pure numpy/OpenCV, one seeded generator per sample).

Horizontal flip, brightness/contrast, colour jitter (RGB only), motion blur, Gaussian noise and a random shadow,
each applied with its own probability. Images are uint8 grey (h, w) or RGB (h, w, 3); the output has the same
shape and dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation."""

    flip_p: float = 0.5
    brightness_contrast_p: float = 0.5
    brightness: float = 25.0  # +- grey levels
    contrast: float = 0.25  # +- gain
    color_jitter_p: float = 0.3
    saturation: float = 0.3  # +- relative
    hue_deg: float = 8.0  # +- degrees
    motion_blur_p: float = 0.2
    motion_blur_max_px: int = 7
    noise_p: float = 0.2
    noise_sigma: tuple[float, float] = (3.0, 10.0)  # grey levels
    shadow_p: float = 0.2
    shadow_strength: tuple[float, float] = (0.5, 0.8)  # multiplier inside the shadow


def motion_blur_kernel(length_px: int, angle_deg: float) -> np.ndarray:
    """A normalised line kernel of the given length (odd, pixels) and direction."""
    length_px = max(1, int(length_px) | 1)
    kernel = np.zeros((length_px, length_px), dtype=np.float32)
    kernel[length_px // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D((length_px / 2 - 0.5, length_px / 2 - 0.5), angle_deg, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length_px, length_px))
    return kernel / max(kernel.sum(), 1e-6)


def augment_face(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """Apply the training augmentations to one uint8 face image."""
    out = image
    if rng.random() < config.flip_p:
        out = out[:, ::-1]
    out = out.astype(np.float32)
    if rng.random() < config.brightness_contrast_p:
        gain = 1.0 + rng.uniform(-config.contrast, config.contrast)
        out = (out - 128.0) * gain + 128.0 + rng.uniform(-config.brightness, config.brightness)
    if out.ndim == 3 and rng.random() < config.color_jitter_p:
        hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-config.hue_deg, config.hue_deg) / 2.0) % 180.0
        hsv[..., 1] = np.clip(hsv[..., 1] * (1.0 + rng.uniform(-config.saturation, config.saturation)), 0, 255)
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    if rng.random() < config.motion_blur_p:
        length = int(rng.integers(3, config.motion_blur_max_px + 1))
        out = cv2.filter2D(out, -1, motion_blur_kernel(length, rng.uniform(0, 180)))
    if rng.random() < config.noise_p:
        out = out + rng.normal(0.0, rng.uniform(*config.noise_sigma), size=out.shape).astype(np.float32)
    if rng.random() < config.shadow_p:
        mask = _shadow_mask(out.shape[:2], rng, config.shadow_strength)
        out = out * (mask if out.ndim == 2 else mask[..., None])
    return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8))


def _shadow_mask(shape: tuple[int, int], rng: np.random.Generator, strength: tuple[float, float]) -> np.ndarray:
    """Multiplier map: 1 outside, ``strength`` inside a random half-plane, feathered over a few pixels."""
    height, width = shape
    angle = rng.uniform(0, 2 * np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)])
    point = np.array([rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = (xx - point[0]) * normal[0] + (yy - point[1]) * normal[1]
    feather = max(2.0, 0.05 * max(height, width))
    inside = 1.0 / (1.0 + np.exp(-distance / feather))
    factor = rng.uniform(*strength)
    return (1.0 - inside * (1.0 - factor)).astype(np.float32)
