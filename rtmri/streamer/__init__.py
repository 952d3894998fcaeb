"""Audio in, rtMRI frames out at 25 fps, with onnxruntime. Never imports torch."""
