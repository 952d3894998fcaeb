"""Reading and writing rtMRI videos with their timestamps, bringing them to 25 fps and
composing what is shown: shared by `rtmri prepare`, the streamer, the lessons and the
evaluator (no torch)."""

from rtmri.video.compose import DISPLAY_SIZE, composed_shape, resize_frames, side_by_side, upscale
from rtmri.video.frame_rate import INTERPOLATIONS, FrameRateConverter, convert
from rtmri.video.read import (
    CropResize,
    DecodeStats,
    VideoError,
    VideoInfo,
    check_crop,
    frames,
    probe,
    read_frame,
)
from rtmri.video.write import VideoWriter, write_video

__all__ = [
    "DISPLAY_SIZE",
    "INTERPOLATIONS",
    "CropResize",
    "DecodeStats",
    "FrameRateConverter",
    "VideoError",
    "VideoInfo",
    "VideoWriter",
    "check_crop",
    "composed_shape",
    "convert",
    "frames",
    "probe",
    "read_frame",
    "resize_frames",
    "side_by_side",
    "upscale",
    "write_video",
]
