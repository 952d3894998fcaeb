"""rtmri benchmark-serve: load benchmark of `rtmri serve` on loopback (not a test; prints tables).

    rtmri benchmark-serve --bundle B [--viewers 30] [--seconds 20] [--session-seconds 8] [--max-sessions 32]
    rtmri benchmark-serve --synthetic-ms 10 ...   (no bundle: a stand-in graph)

(`python -m rtmri.streamer.bench_serve` is the same command.)

1. Broadcast: `rtmri serve --file` (a generated 20 s recording, looped) in its own process,
   N viewers in this process, plus one client that never reads. Per viewer: frames per
   second, gaps, frames dropped, and send -> receive and sound -> receive latency (the
   server and the clients share the machine's monotonic clock, so no offset is needed).
2. Learner sessions: `rtmri serve --mode learner`, then 1, 2, 4, ... sessions at once, each
   sending 20 ms audio messages at real-time pace (as the page does) for --session-seconds and
   reading its frames; a session keeps 25 fps when it receives at least 95 % of the frames
   its audio makes. Stops at the first count that does not keep up.

Everything is bounded: --viewers <= 200, --max-sessions <= 64, 60 s per step, loopback only.
--synthetic-ms builds a stand-in bundle (convolutions that take about that long per frame
on this machine, batch 1; needs the `onnx` package) where no exported compact bundle is at
hand: its figures say what the server does with a model of that cost, not how a trained
model performs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
from rich.console import Console
from rich.table import Table

from rtmri import RtmriError
from rtmri.audio import N_MELS, SAMPLE_RATE
from rtmri.bundle import FRAMES_OUTPUT, MEL_INPUT, encode_png, new_manifest, write_bundle
from rtmri.bundle.engine import Engine
from rtmri.clips import IMAGE_SIZE
from rtmri.streamer.benchmarks.signals import bursts
from rtmri.streamer.server.protocol import audio_message, parse_frame

CHUNK = 320
HELLO = json.dumps({"type": "hello"})


def pct(values, q):
    return float(np.percentile(values, q)) if len(values) else float("nan")


class Server:
    """`rtmri serve` in its own process on a free loopback port."""

    def __init__(self, *args: str) -> None:
        command = [sys.executable, "-m", "rtmri.cli", "serve", "--host", "127.0.0.1", "--port", "0", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not match:
            self.process.kill()
            raise SystemExit(f"the server did not start: {line}{self.process.stderr.read()}")
        self.ws = f"ws://127.0.0.1:{match.group(1)}/ws"
        self.port = int(match.group(1))

    def cpu_s(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- 1. broadcast ---------------------------------------------------------------------

async def _viewer(url: str, record: dict, stop: asyncio.Event) -> None:
    from websockets.asyncio.client import connect  # websockets: the live extra

    def on_control(now: float, m: dict) -> None:
        if m["type"] == "status":
            record["clients"].append((now, m["clients"]))

    def on_frame(now: float, f: dict) -> None:
        record["frames"].append((now, f["index"], f["dropped"], f["sent_at_ms"], f["spoken_at_ms"]))

    async with connect(url, max_size=2**22, compression=None) as ws:
        await ws.send(HELLO)
        task = asyncio.create_task(_receive(ws, on_control, on_frame))
        await stop.wait()
        task.cancel()


async def _receive(ws, on_control, on_frame) -> None:
    """Every message as it comes: on_control(received_ms, dict) or on_frame(received_ms, frame dict)."""
    async for message in ws:
        now = time.monotonic() * 1000.0
        if isinstance(message, str):
            on_control(now, json.loads(message))
        else:
            on_frame(now, parse_frame(message))


async def _never_reading(url: str, port: int):
    """A viewer that says hello and then reads nothing: its socket's reading is paused, and
    its small receive buffer fills within a second or two."""
    from websockets.asyncio.client import connect  # websockets: the live extra

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    ws = await connect(url, sock=sock, compression=None)
    await ws.send(HELLO)
    ws.transport.pause_reading()
    return ws


async def _broadcast(url: str, port: int, viewers: int, seconds: float) -> tuple[list[dict], float | None]:
    records = [{"frames": [], "clients": []} for _ in range(viewers)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_viewer(url, r, stop)) for r in records]
    slow = await _never_reading(url, port)
    await asyncio.sleep(1.0)  # everyone connected and streaming
    start = time.monotonic() * 1000.0
    await asyncio.sleep(seconds)
    end = time.monotonic() * 1000.0
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    slow.transport.abort()
    cut_off = next((t for t, n in records[0]["clients"] if n <= viewers and t > start - 1000), None)
    for r in records:
        r["frames"] = [f for f in r["frames"] if start <= f[0] < end]
    return records, None if cut_off is None else (cut_off - start) / 1000.0 + 1.0


def bench_broadcast(bundle: str, viewers: int, seconds: float, work: Path) -> dict:
    audio = work / "bench.wav"
    soundfile.write(audio, bursts(20.0), SAMPLE_RATE, subtype="PCM_16")
    server = Server("--bundle", bundle, "--file", str(audio), "--max-clients", str(viewers + 10))
    try:
        cpu0 = server.cpu_s()
        records, cut_off = asyncio.run(_broadcast(server.ws, server.port, viewers, seconds))
        cpu = (server.cpu_s() - cpu0) / (seconds + 1.0)
    finally:
        server.stop()
    fps = [len(r["frames"]) / seconds for r in records]
    gaps = [max(np.diff([f[0] for f in r["frames"]]), default=float("nan")) for r in records]
    transport = [f[0] - f[3] for r in records for f in r["frames"]]
    sound = [f[0] - f[4] for r in records for f in r["frames"]]
    return {"viewers": viewers, "seconds": seconds, "fps_min": min(fps), "fps_median": float(np.median(fps)),
            "kept_25fps": sum(f >= 0.95 * 25 for f in fps), "dropped": sum(f[2] for r in records for f in r["frames"]),
            "max_gap_ms": float(np.nanmax(gaps)), "send_to_receive_p50_ms": pct(transport, 50),
            "send_to_receive_p95_ms": pct(transport, 95), "sound_to_receive_p50_ms": pct(sound, 50),
            "sound_to_receive_p95_ms": pct(sound, 95), "never_reading_client_cut_off_after_s": cut_off,
            "server_cpu_percent": 100.0 * cpu}


# --- 2. learner sessions --------------------------------------------------------------

async def _learner(url: str, audio: np.ndarray, record: dict, delay: float) -> None:
    from websockets.asyncio.client import connect  # websockets: the live extra

    await asyncio.sleep(delay)
    async with connect(url, max_size=2**22, compression=None) as ws:
        await ws.send(HELLO)
        await ws.send('{"type": "start"}')
        stopped = asyncio.Event()

        def on_control(now: float, m: dict) -> None:
            if m["type"] == "stopped":
                record["stopped"] = m
                stopped.set()

        def on_frame(now: float, f: dict) -> None:
            record["frames"].append((now, f["index"], f["audio_ready_at_ms"]))

        reader = asyncio.create_task(_receive(ws, on_control, on_frame))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i, at in enumerate(range(0, len(audio), CHUNK)):
            await ws.send(audio_message(at, audio[at:at + CHUNK]))
            await asyncio.sleep(max(0.0, t0 + (i + 1) * CHUNK / SAMPLE_RATE - loop.time()))
        await ws.send('{"type": "stop"}')
        try:
            await asyncio.wait_for(stopped.wait(), 10)
        except TimeoutError:
            pass
        reader.cancel()


async def _learners(url: str, sessions: int, seconds: float) -> list[dict]:
    records = [{"frames": [], "stopped": None} for _ in range(sessions)]
    await asyncio.gather(*(_learner(url, bursts(seconds, seed=i), r, 0.02 * i / sessions) for i, r in enumerate(records)))
    return records


def bench_learners(bundle: str, max_sessions: int, seconds: float) -> list[dict]:
    server = Server("--bundle", bundle, "--mode", "learner", "--max-sessions", str(max_sessions), "--max-clients", str(max_sessions + 10))
    rows = []
    try:
        count = 1
        while count <= max_sessions:
            cpu0 = server.cpu_s()
            records = asyncio.run(_learners(server.ws, count, seconds))
            cpu = (server.cpu_s() - cpu0) / seconds
            expected = int(seconds * 25)
            received = [len(r["frames"]) for r in records]
            latency = [now - ready for r in records for now, _, ready in r["frames"]]
            dropped = sum((r["stopped"] or {}).get("dropped", 0) for r in records)
            keeps = min(received) >= 0.95 * expected
            rows.append({"sessions": count, "fps_min": min(received) / seconds, "fps_median": float(np.median(received)) / seconds,
                         "dropped": dropped, "audio_to_receive_p50_ms": pct(latency, 50),
                         "audio_to_receive_p95_ms": pct(latency, 95), "server_cpu_percent": 100.0 * cpu, "keeps_25fps": keeps})
            if not keeps:
                break
            count = count * 2 if count < 4 else count + 4
    finally:
        server.stop()
    return rows


# --- a stand-in bundle of a given cost ------------------------------------------------

def synthetic_bundle(out_dir: Path, layers: int, size: int = IMAGE_SIZE, channels: int = 128) -> str:
    """A stand-in graph: layers 3x3 convolutions, channels wide, at a quarter of the image
    size (as in the middle of wav2lip's generator), then DepthToSpace to the full image,
    driven by the mel window's loudness."""
    from onnx import TensorProto, helper, numpy_helper  # onnx: the train extra

    side = size // 4
    per_layer = 2 * 9 * channels * channels * side * side / 1e9
    rng = np.random.default_rng(0)
    init = [numpy_helper.from_array(rng.standard_normal((1, channels, side, side)).astype(np.float32), "basis"),
            numpy_helper.from_array((rng.standard_normal((16, channels, 1, 1)) * 0.05).astype(np.float32), "wout")]
    nodes = [helper.make_node("ReduceMean", [MEL_INPUT], ["loud"], axes=[1, 2, 3], keepdims=1),
             helper.make_node("Mul", ["loud", "basis"], ["x0"])]
    for i in range(layers):
        w = (rng.standard_normal((channels, channels, 3, 3)) / np.sqrt(9 * channels)).astype(np.float32)
        init.append(numpy_helper.from_array(w, f"w{i}"))
        nodes += [helper.make_node("Conv", [f"x{i}", f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"x{i + 1}"])]
    nodes += [helper.make_node("Conv", [f"x{layers}", "wout"], ["out16"]),
              helper.make_node("DepthToSpace", ["out16"], ["out"], blocksize=4),
              helper.make_node("Sigmoid", ["out"], [FRAMES_OUTPUT])]
    graph = helper.make_graph(nodes, "synthetic", [helper.make_tensor_value_info(MEL_INPUT, TensorProto.FLOAT, ["batch", 1, 80, 16])],
                              [helper.make_tensor_value_info(FRAMES_OUTPUT, TensorProto.FLOAT, ["batch", 1, size, size])], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    manifest = new_manifest(
        lookahead_ms=132.5, image_size=size, channels=1, face_encoder="baked",
        frames={"crop": [0, 0, 256, 256], "orientation": "synthetic"},
        reference={"frames": [encode_png(np.zeros((size, size), np.uint8))], "source": "none"},
        training={"dataset": f"none: a synthetic stand-in of {layers * per_layer:.2f} GFLOPs per frame for bench_serve"},
        evaluation={},
    )
    return str(write_bundle(out_dir, model.SerializeToString(), manifest).path)


def calibrated_bundle(out_dir: Path, target_ms: float) -> str:
    """A stand-in bundle that takes about target_ms per frame (batch 1) on this machine."""
    probe = inference_ms(synthetic_bundle(out_dir / "probe", 4))[1]
    layers = max(1, round(4 * target_ms / probe))
    return synthetic_bundle(out_dir / "synthetic", layers)


def inference_ms(bundle: str) -> dict:
    engine = Engine(bundle)
    engine.warm_up(batch_sizes=(1, 8))
    out = {}
    for batch in (1, 8):
        mel = np.zeros((batch, N_MELS, engine.bundle.window_columns), np.float32)
        start = time.perf_counter()
        runs = 0
        while time.perf_counter() - start < 1.0:
            engine.run(mel)
            runs += 1
        out[batch] = (time.perf_counter() - start) * 1000.0 / runs / batch
    return out


# --- the command ----------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", help="model bundle to serve")
    parser.add_argument("--synthetic-ms", type=float, help="instead of --bundle: a stand-in graph that takes about this long per frame here")
    parser.add_argument("--viewers", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=20.0, help="broadcast: measured time (default 20)")
    parser.add_argument("--session-seconds", type=float, default=8.0, help="learners: audio per session and step (default 8)")
    parser.add_argument("--max-sessions", type=int, default=32)
    parser.add_argument("--skip", choices=("broadcast", "learners"), help="leave one part out")
    parser.add_argument("--json", help="also write the figures here")


def main(args) -> int:
    if not (1 <= args.viewers <= 200 and 1 <= args.max_sessions <= 64 and 1 <= args.seconds <= 60 and 1 <= args.session_seconds <= 60):
        raise RtmriError("bounds: --viewers 1..200, --max-sessions 1..64, --seconds and --session-seconds 1..60")
    if (args.bundle is None) == (args.synthetic_ms is None):
        raise RtmriError("give --bundle or --synthetic-ms")

    console = Console(width=170)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle = args.bundle or calibrated_bundle(work, args.synthetic_ms)
        per_frame = inference_ms(bundle)
        console.print(f"bundle {bundle}: inference {per_frame[1]:.2f} ms per frame alone, {per_frame[8]:.2f} ms per frame in a batch of 8 "
                      f"(onnxruntime, 2 threads); {os.cpu_count()} CPU cores")
        results = {"bundle": bundle, "inference_ms_per_frame": per_frame, "cpus": os.cpu_count()}
        if args.skip != "broadcast":
            b = bench_broadcast(bundle, args.viewers, args.seconds, work)
            results["broadcast"] = b
            table = Table("viewers", "fps min / median", "viewers at 25 fps", "dropped", "max gap ms",
                          "send->recv p50/p95 ms", "sound->recv p50/p95 ms", "server CPU %", "never-reading client",
                          title=f"broadcast, {args.seconds:g} s, plus one client that never reads")
            cut = b["never_reading_client_cut_off_after_s"]
            table.add_row(str(b["viewers"]), f"{b['fps_min']:.1f} / {b['fps_median']:.1f}", f"{b['kept_25fps']}/{b['viewers']}",
                          str(b["dropped"]), f"{b['max_gap_ms']:.0f}",
                          f"{b['send_to_receive_p50_ms']:.1f} / {b['send_to_receive_p95_ms']:.1f}",
                          f"{b['sound_to_receive_p50_ms']:.1f} / {b['sound_to_receive_p95_ms']:.1f}", f"{b['server_cpu_percent']:.0f}",
                          "cut off after %.0f s" % cut if cut is not None else "still connected")
            console.print(table)
        if args.skip != "learners":
            rows = bench_learners(bundle, args.max_sessions, args.session_seconds)
            results["learners"] = rows
            table = Table("sessions", "fps min / median", "dropped", "audio->recv p50/p95 ms", "server CPU %", "keeps 25 fps",
                          title=f"learner sessions, {args.session_seconds:g} s of real-time audio each")
            for r in rows:
                table.add_row(str(r["sessions"]), f"{r['fps_min']:.1f} / {r['fps_median']:.1f}", str(r["dropped"]),
                              f"{r['audio_to_receive_p50_ms']:.1f} / {r['audio_to_receive_p95_ms']:.1f}",
                              f"{r['server_cpu_percent']:.0f}", "yes" if r["keeps_25fps"] else "no")
            console.print(table)
            kept = [r["sessions"] for r in rows if r["keeps_25fps"]]
            console.print(f"learner sessions that keep 25 fps: {max(kept) if kept else 0}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0

