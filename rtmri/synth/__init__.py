"""Synthetic rtMRI corpus from the VocalTractLab articulatory synthesizer (``rtmri synth``).

Speech audio and midsagittal images come from the same VocalTractLab tract states:
phones with durations -> gestural score -> tract states (about 200 per second) ->
audio (VocalTractLab's time-domain synthesis) and MRI-like frames (the outlines that
VocalTractLab draws for a state, rasterised, blurred and made noisy like real-time MRI).
"""
