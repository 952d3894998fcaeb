"""A local window (pygame) for a projector: resizable, fullscreen, grayscale or a colour
map, and a HUD with fps, dropped frames and latency.

Keys: F fullscreen, Space pause, C next colour map, H hide the HUD, Q or Esc quit.
"""

from __future__ import annotations

import os
import time
from collections import deque

import numpy as np

from rtmri.streamer.fps import FpsMeter
from rtmri.streamer.stream import StopStreaming

COLORMAPS = ("gray", "bone", "magma", "viridis")
PAINTLESS_DRIVERS = ("dummy", "offscreen")  # SDL video drivers that open a "window" and show nothing
WINDOW_SIZE = 720
HUD_FRAMES = 25


def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 lookup table."""
    if name == "gray":
        ramp = np.arange(256, dtype=np.uint8)
        return np.stack([ramp] * 3, axis=1)
    from matplotlib import colormaps  # matplotlib: the live extra, only for a colour map

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


class WindowSink:
    def __init__(self, title: str = "rtmri-live", fullscreen: bool = False, colormap: str = "gray", on_paint=None) -> None:
        """on_paint(frame, draw_started, flipped), both monotonic, is called once per frame
        painted, after pygame.display.flip() has returned (benchmark-latency --window)."""
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame  # pygame: the live extra

        self.pg = pygame
        pygame.init()
        pygame.display.set_caption(title)
        self.fullscreen = fullscreen
        self.screen = self._set_mode()
        self.font = pygame.font.Font(None, 28)
        self.colormap_index = COLORMAPS.index(colormap)
        self.luts = {name: colormap_lut(name) for name in COLORMAPS[:1]}
        self.paused = False
        self.hud = True
        self.dropped = 0
        self._fps = FpsMeter(HUD_FRAMES)
        self._latency_ms = deque(maxlen=HUD_FRAMES)
        self._on_paint = on_paint

    @property
    def driver(self) -> str:
        return self.pg.display.get_driver()

    @property
    def paints(self) -> bool:
        """False on SDL's dummy/offscreen drivers (SDL falls back to offscreen when DISPLAY
        names no running server), where nothing reaches a screen."""
        return self.driver not in PAINTLESS_DRIVERS

    def _set_mode(self):
        flags = self.pg.FULLSCREEN if self.fullscreen else self.pg.RESIZABLE
        size = (0, 0) if self.fullscreen else (WINDOW_SIZE, WINDOW_SIZE)
        return self.pg.display.set_mode(size, flags)

    def _lut(self) -> np.ndarray:
        name = COLORMAPS[self.colormap_index]
        if name not in self.luts:
            self.luts[name] = colormap_lut(name)
        return self.luts[name]

    def _handle_events(self) -> None:
        pg = self.pg
        for event in pg.event.get():
            if event.type == pg.QUIT:
                raise StopStreaming
            if event.type == pg.KEYDOWN:
                if event.key in (pg.K_q, pg.K_ESCAPE):
                    raise StopStreaming
                if event.key == pg.K_f:
                    self.fullscreen = not self.fullscreen
                    self.screen = self._set_mode()
                elif event.key == pg.K_SPACE:
                    self.paused = not self.paused
                elif event.key == pg.K_c:
                    self.colormap_index = (self.colormap_index + 1) % len(COLORMAPS)
                elif event.key == pg.K_h:
                    self.hud = not self.hud

    def frame(self, frame) -> None:
        self._handle_events()
        self.dropped += frame.dropped_before
        if self.paused:
            return
        pg = self.pg
        draw_started = time.monotonic()
        rgb = self._lut()[frame.image]
        surface = pg.surfarray.make_surface(np.ascontiguousarray(rgb.transpose(1, 0, 2)))
        width, height = self.screen.get_size()
        side = min(width, height)
        self.screen.fill((0, 0, 0))
        self.screen.blit(pg.transform.smoothscale(surface, (side, side)), ((width - side) // 2, (height - side) // 2))
        now = time.monotonic()
        self._fps.tick(now)
        self._latency_ms.append((now - frame.spoken_at) * 1000.0)
        if self.hud:
            self._draw_hud()
        pg.display.flip()
        if self._on_paint is not None:
            self._on_paint(frame, draw_started, time.monotonic())

    def _draw_hud(self) -> None:
        text = f"{self._fps.fps:4.1f} fps   dropped {self.dropped}   audio-to-photon {np.median(self._latency_ms):4.0f} ms"
        self.screen.blit(self.font.render(text, True, (255, 255, 0)), (10, 10))

    def close(self) -> None:
        self.pg.display.quit()
        self.pg.quit()
