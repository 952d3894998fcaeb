"""Faster variants of a bundle's graph: fp16 (for GPUs) and int8 static quantization
(QDQ, calibrated on dataset clips)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from rtmri.bundle import FACE_INPUT, MEL_INPUT

FP16_TOLERANCE = 2e-2  # max abs difference on frames in [0, 1] against fp32
INT8_SSIM_TOLERANCE = 0.02  # largest validation SSIM loss accepted for int8
CALIBRATION_WINDOWS = 256


def to_fp16(onnx_bytes: bytes) -> bytes:
    """Weights and activations in float16; inputs and outputs stay float32."""
    import onnx  # onnx, onnxconverter-common: the train extra
    from onnxconverter_common import float16  # the train extra

    model = float16.convert_float_to_float16(onnx.load_from_string(onnx_bytes), keep_io_types=True)
    return model.SerializeToString()


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over mel windows."""

    def __init__(self, windows: np.ndarray, face: np.ndarray | None, batch: int = 16) -> None:
        self.batches = [windows[i : i + batch] for i in range(0, len(windows), batch)]
        self.face = face

    def get_next(self):
        if not self.batches:
            return None
        mel = self.batches.pop(0)[:, None].astype(np.float32)
        feeds = {MEL_INPUT: mel}
        if self.face is not None:
            feeds[FACE_INPUT] = np.repeat(self.face, len(mel), axis=0)
        return feeds


def to_int8(onnx_bytes: bytes, calibration_windows: np.ndarray, face: np.ndarray | None) -> bytes:
    """Static QDQ quantization (int8 weights per channel, uint8 activations)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static  # pulls onnx: the train extra
    from onnxruntime.quantization.shape_inference import quant_pre_process  # pulls onnx

    rng = np.random.default_rng(0)
    chosen = calibration_windows[rng.permutation(len(calibration_windows))[:CALIBRATION_WINDOWS]]
    with tempfile.TemporaryDirectory() as tmp:
        source, prepared, quantized = (Path(tmp) / name for name in ("fp32.onnx", "prep.onnx", "int8.onnx"))
        source.write_bytes(onnx_bytes)
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(quantized), _Calibration(chosen, face), quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
        )
        return quantized.read_bytes()
