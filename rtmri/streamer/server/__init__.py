"""`rtmri serve`: the streamer's frames to browsers over one WebSocket port.

protocol   the binary frame and audio messages, JSON control messages, close codes
security   token, origin and host checks, limits
clients    a viewer's bounded queue (the newest frame wins) and its sending task
broadcast  the live loop (a Streamer sink) to every viewer
learners   per-learner microphone sessions batched into one engine
references native recordings rendered through the model, and their original clips
app        the process: HTTP page + WebSocket on one port
"""
