"""Writing frames as animations: GIF through Pillow, MP4 (H.264) through an ffmpeg binary.

Shared by the motion renderer (``motion_io``) and the video writer (``video_io``). Each writes
into ``tmp``; callers wrap it in ``mgm.io.atomic_write`` so a file appears whole or not at all.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable

import numpy as np
from PIL import Image

GIF_FRAME_MS = "mgm frame_ms="  # the GIF comment's prefix before one frame's delay in ms
_ALL_FRAMES_PALETTE = 1 << 22  # values (H * W * 3 * frames) up to which every frame shapes the palette


def write_gif(tmp: str, frames: list[np.ndarray], fps: float, colours: int = 256) -> None:
    """Frames uint8 [H, W, 3] -> a looping GIF at ``tmp``, one shared palette of ``colours``."""
    # One palette for all frames: from every frame of a small clip, else from the first, middle and
    # last frames (a motion's last frame has the whole trail).
    small = sum(f.size for f in frames) <= _ALL_FRAMES_PALETTE
    sample = np.concatenate(frames if small else [frames[0], frames[len(frames) // 2], frames[-1]], axis=0)
    palette = Image.fromarray(sample).quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    # GIF stores delays in hundredths of a second: 20 fps is exact, 30 fps plays at 1/0.03 = 33.3 fps.
    # Pillow merges identical consecutive frames (adding their delays); the comment records one
    # frame's delay so a reader (``video_io.read_video``) can count them again.
    duration = round(1000 / fps)
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0,
                   comment=f"{GIF_FRAME_MS}{duration}".encode())  # fmt: skip


def write_mp4(tmp: str, frames: Iterable[np.ndarray], fps: float, size: int, ffmpeg: str) -> None:
    """Frames uint8 [size, size, 3] -> an H.264 MP4 at ``tmp`` through the ``ffmpeg`` binary."""
    command = [
        ffmpeg, "-nostdin", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}", "-framerate", f"{fps:g}", "-i", "-",
        "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",  # yuv420p needs even sizes
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mp4", tmp,
    ]  # fmt: skip
    # ffmpeg's messages go to a file, not a pipe: a full pipe nobody reads would block it mid-clip.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        try:
            for frame in frames:
                process.stdin.write(frame.tobytes())
        except BrokenPipeError:
            pass  # ffmpeg stopped early; its exit status and log say why
        finally:
            process.stdin.close()
            returncode = process.wait()
        if returncode != 0:
            log.seek(0)
            message = log.read().decode(errors="replace").strip()
            raise RuntimeError(f"ffmpeg failed (exit status {returncode}) writing an MP4: {message}")
