"""`rtmri serve`: the streamer's frames to browsers over one WebSocket port.

protocol     the binary frame (FrameHeader) and audio messages, JSON control messages, close codes
security     token, origin and host checks, limits
clients      a viewer's bounded queue (the newest frame wins) and its sending task
connection   websockets' connection with the limits it leaves to its user (pings, write buffer)
http_routes  HTTP: the static page and its Content-Security-Policy, the references API
admission    hello, token, waiting room, number of clients, message rate and size, stalled sockets
dispatch     a joined client's messages to the mode and the comparer (Comparer: the interface)
comparisons  the bound on comparisons in hand: "busy" at once rather than a wait without end
remote_comparer  a comparer in a process of its own, at a lower CPU priority
modes        the interface of the two modes (join, leave, audio, control, status, start, stop)
broadcast    broadcast mode: the live loop (a Streamer sink) to every viewer
learners     learner mode: per-learner microphone sessions batched into one engine
references   recordings rendered through the model, and their original clips
agent        HAProxy's agent check: a worker's weight from its free session places, "drain"
metrics      the Prometheus endpoint (sessions, frames sent and dropped, latency, comparisons)
app          the process: RtmriServer puts the parts together on one port
"""
