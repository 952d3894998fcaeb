"""`rtmri serve`: the streamer's frames to browsers over one WebSocket port.

protocol   the binary frame (FrameHeader) and audio messages, JSON control messages, close codes
security   token, origin and host checks, limits
clients    a viewer's bounded queue (the newest frame wins) and its sending task
modes      the interface of the two modes (join, leave, audio, control, status, start, stop)
broadcast  broadcast mode: the live loop (a Streamer sink) to every viewer
learners   learner mode: per-learner microphone sessions batched into one engine
references native recordings rendered through the model, and their original clips
app        the process: HTTP page + WebSocket on one port
"""
