"""Reading (and writing) rtMRI videos with their timestamps and bringing them to 25 fps: shared by
`rtmri prepare`, the side-by-side renderer and the evaluator (no torch)."""

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
    resize_frames,
)
from rtmri.video.write import write_video

__all__ = [
    "INTERPOLATIONS",
    "CropResize",
    "DecodeStats",
    "FrameRateConverter",
    "VideoError",
    "VideoInfo",
    "check_crop",
    "convert",
    "frames",
    "probe",
    "read_frame",
    "resize_frames",
    "write_video",
]
