"""rtmri benchmark-serve: load benchmark of `rtmri serve` on loopback (not a test; prints tables).

    rtmri benchmark-serve --bundle B [--viewers 30] [--seconds 20] [--session-seconds 8] [--max-sessions 32]
    rtmri benchmark-serve --synthetic-ms 10 ...   (no bundle: a stand-in graph)
    rtmri benchmark-serve --bundle B --skip broadcast --workers 2 --comparisons 16

(`python -m rtmri.streamer.bench_serve` is the same command.)

1. Broadcast: `rtmri serve --file` (a generated 20 s recording, looped) in its own process,
   N viewers in this process, plus one client that never reads. Per viewer: frames per
   second, gaps, frames dropped, and send -> receive and sound -> receive latency (the
   server and the clients share the machine's monotonic clock, so no offset is needed).
2. Learner sessions: `rtmri serve --mode learner`, then 1, 2, 4, ... sessions at once, each
   sending 20 ms audio messages at real-time pace (as the page does) for --session-seconds and
   reading its frames; a session keeps 25 fps when it receives at least 95 % of the frames
   its audio makes. Stops at the first count that does not keep up.
3. A class answering at once (--comparisons N): N learners each play one of the server's
   references (its own audio, fetched over HTTP) as their attempt, all ending at the same
   moment, ask for its comparison together and go on speaking: the time to every answer
   (p50, p95), the answers that were errors or "busy", and every session's frame rate
   while the comparisons run.

--workers N runs `rtmri serve --workers N` (N processes behind HAProxy) and measures through
the balancer; CPU is that of the whole process tree (workers and HAProxy).

Everything is bounded: --viewers <= 200, --max-sessions <= 64, 60 s per step, loopback only.
--synthetic-ms builds a stand-in bundle (convolutions that take about that long per frame
on this machine, batch 1; needs the `onnx` package) where no exported compact bundle is at
hand: its figures say what the server does with a model of that cost, not how a trained
model performs.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
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
from rtmri.streamer.benchmarks.learner_client import Learner
from rtmri.streamer.benchmarks.signals import bursts
from rtmri.streamer.server.protocol import audio_message, parse_frame

CHUNK = 320
HELLO = json.dumps({"type": "hello"})


def pct(values, q):
    return float(np.percentile(values, q)) if len(values) else float("nan")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and all its descendants (alive ones)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(tree_cpu_s(int(child)) for child in children)


class Server:
    """`rtmri serve` in its own process on a free loopback port (--workers N: N processes behind HAProxy)."""

    def __init__(self, *args: str, workers: int = 1, balancer: bool = False) -> None:
        command = [sys.executable, "-m", "rtmri.cli", "serve", "--host", "127.0.0.1", "--port", "0", "--workers", str(workers),
                   *(["--balancer"] if balancer else []), *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []  # its stderr, read as it comes (its workers and HAProxy write there too)
        reader = threading.Thread(target=lambda: self.log.extend(self.process.stderr), daemon=True)
        reader.start()
        line = self.process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not match:
            self.process.kill()
            reader.join(5)
            raise SystemExit(f"the server did not start: {line}{''.join(self.log)}")
        self.ws = f"ws://127.0.0.1:{match.group(1)}/ws"
        self.http = f"http://127.0.0.1:{match.group(1)}"
        self.port = int(match.group(1))

    def cpu_s(self) -> float:
        return tree_cpu_s(self.process.pid)

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


def learner_server(bundle: str, max_sessions: int, workers: int, compare_here: bool = False, balancer: bool = False) -> Server:
    return Server("--bundle", bundle, "--mode", "learner", "--max-sessions", str(max_sessions), "--max-clients",
                  str(max_sessions + 10), "--max-comparisons-waiting", str(max_sessions),
                  *(["--compare-here"] if compare_here else []), workers=workers, balancer=balancer)


def bench_learners(bundle: str, max_sessions: int, seconds: float, workers: int = 1, balancer: bool = False) -> list[dict]:
    server = learner_server(bundle, max_sessions, workers, balancer=balancer)
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


# --- 3. a class answering at once -------------------------------------------------------

def attempts(server: Server, count: int) -> list[tuple[str, np.ndarray]]:
    """count (reference id, its audio) pairs, the server's references in turn."""
    with urllib.request.urlopen(server.http + "/references", timeout=30) as response:
        listed = json.load(response)
    if not listed:
        raise RtmriError("the server has no references to compare with (learner mode serves the shipped lessons)")
    audio = {}
    for r in listed:
        with urllib.request.urlopen(f"{server.http}/references/{r['id']}/audio.wav", timeout=30) as response:
            audio[r["id"]] = soundfile.read(io.BytesIO(response.read()), dtype="float32")[0]
    return [(listed[i % len(listed)]["id"], audio[listed[i % len(listed)]["id"]]) for i in range(count)]


async def _class(url: str, pairs: list, after_s: float, timeout_s: float) -> tuple[list, float, float]:
    """Every learner's attempt padded in front with silence so that all end together, then
    speech-like bursts; all ask at once. -> (learners, asked at, last answer at)."""
    longest = max(len(audio) for _, audio in pairs)
    learners = []
    for i, (_, audio) in enumerate(pairs):
        stream = np.concatenate([np.zeros(longest - len(audio), np.float32), audio, bursts(after_s + timeout_s + 5.0, seed=i)])
        learners.append(Learner(url, stream, seed=i))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(learner.run(stop, reconnect=False)) for learner in learners]
    while not all(learner.sent >= longest for learner in learners):
        if all(task.done() for task in tasks):
            raise RtmriError("the learners could not connect")
        await asyncio.sleep(0.005)
    asked = time.monotonic()
    for learner, (reference, audio) in zip(learners, pairs):
        await learner.compare(reference, longest - len(audio), longest)
    while sum(len(learner.record.comparisons) for learner in learners) < len(learners) and time.monotonic() - asked < timeout_s:
        await asyncio.sleep(0.05)
    last = time.monotonic()
    await asyncio.sleep(max(0.0, asked + after_s - last))
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return learners, asked, last


def bench_class(bundle: str, count: int, workers: int = 1, after_s: float = 5.0, timeout_s: float = 60.0,
                compare_here: bool = False, balancer: bool = False) -> dict:
    server = learner_server(bundle, max(count, 8), workers, compare_here, balancer)
    try:
        pairs = attempts(server, count)
        cpu0, t0 = server.cpu_s(), time.monotonic()
        learners, asked, last = asyncio.run(_class(server.ws, pairs, after_s, timeout_s))
        cpu = (server.cpu_s() - cpu0) / (time.monotonic() - t0)
    finally:
        server.stop()
    answers = [(answered - t, m) for learner in learners for t, answered, m in learner.record.comparisons]
    times = [seconds for seconds, m in answers if not m.get("error")]
    end = max(last, asked + after_s)
    fps = [learner.record.fps(asked, end) for learner in learners]
    before = [learner.record.fps_streaming(asked - 2.0, asked) for learner in learners]
    return {"learners": count, "workers": workers,
            "compared_in": "the server's process" if compare_here else "a process of their own",
            "answered": len(times), "errors": sorted({m["error"] for _, m in answers if m.get("error")}),
            "unanswered": count - len(answers), "comparison_p50_s": pct(times, 50), "comparison_p95_s": pct(times, 95),
            "comparison_max_s": max(times, default=float("nan")), "fps_min_during": min(fps),
            "fps_median_during": float(np.median(fps)), "sessions_at_25fps_during": sum(f >= 0.95 * 25 for f in fps),
            "fps_min_before": min(before), "measured_s": end - asked, "server_cpu_percent": 100.0 * cpu}


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


BATCH_SIZES = (1, 2, 4, 8, 16, 32)
CURVE_SECONDS = 1.5  # per point


def batch_curve(bundle: str, threads: int, sizes=BATCH_SIZES) -> list[dict]:
    """The engine's batch curve: one pass's time against its batch size (what a GPU plan is
    drawn from: a pass must fit in a frame period, 40 ms, for every session to get 25 fps).
    Wall time and CPU time (this process's): on a machine others load, the CPU time is the
    engine's own cost, the wall time what it got."""
    engine = Engine(bundle, threads=threads)
    engine.warm_up(batch_sizes=sizes)
    rows = []
    for batch in sizes:
        mel = np.zeros((batch, N_MELS, engine.bundle.window_columns), np.float32)
        start, cpu_start, runs = time.perf_counter(), time.process_time(), 0
        while time.perf_counter() - start < CURVE_SECONDS:
            engine.run(mel)
            runs += 1
        pass_ms = (time.perf_counter() - start) * 1000.0 / runs
        cpu_ms = (time.process_time() - cpu_start) * 1000.0 / runs
        rows.append({"threads": threads, "batch": batch, "pass_ms": pass_ms, "ms_per_frame": pass_ms / batch,
                     "cpu_ms_per_frame": cpu_ms / batch, "frames_per_s": 1000.0 * batch / pass_ms})
    return rows


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
    parser.add_argument("--skip", choices=("broadcast", "learners"), action="append", default=[],
                        help="leave a part out (repeatable)")
    parser.add_argument("--workers", type=int, default=1,
                        help="learner parts: `rtmri serve --workers N` behind HAProxy (default 1)")
    parser.add_argument("--balancer", action="store_true", help="HAProxy in front of one worker too (`rtmri serve --balancer`)")
    parser.add_argument("--comparisons", type=int, default=0, metavar="N",
                        help="a class answering at once: N learners finish an attempt together and ask for its comparison")
    parser.add_argument("--compare-seconds", type=float, default=5.0,
                        help="frames measured this long after the class asks (default 5)")
    parser.add_argument("--compare-here", action="store_true",
                        help="comparisons: in the server's process (`rtmri serve --compare-here`), not in one of their own")
    parser.add_argument("--batch-curve", action="store_true",
                        help="also the engine's batch curve (one pass's time against its batch size, 1 and 2 threads)")
    parser.add_argument("--json", help="also write the figures here")


def main(args) -> int:
    if not (1 <= args.viewers <= 200 and 1 <= args.max_sessions <= 64 and 1 <= args.seconds <= 60 and 1 <= args.session_seconds <= 60
            and 1 <= args.workers <= 16 and 0 <= args.comparisons <= 64 and 1 <= args.compare_seconds <= 60):
        raise RtmriError("bounds: --viewers 1..200, --max-sessions 1..64, --seconds and --session-seconds 1..60, --workers 1..16, "
                         "--comparisons 0..64, --compare-seconds 1..60")
    if (args.bundle is None) == (args.synthetic_ms is None):
        raise RtmriError("give --bundle or --synthetic-ms")

    console = Console(width=170)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle = args.bundle or calibrated_bundle(work, args.synthetic_ms)
        per_frame = inference_ms(bundle)
        console.print(f"bundle {bundle}: inference {per_frame[1]:.2f} ms per frame alone, {per_frame[8]:.2f} ms per frame in a batch of 8 "
                      f"(onnxruntime, 2 threads); {os.cpu_count()} CPU cores")
        load = os.getloadavg()
        console.print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min; this machine is shared)")
        results = {"bundle": bundle, "inference_ms_per_frame": per_frame, "cpus": os.cpu_count(), "workers": args.workers,
                   "load_before": load}
        if args.batch_curve:
            rows = [row for threads in (1, 2) for row in batch_curve(bundle, threads)]
            results["batch_curve"] = rows
            table = Table("threads", "batch", "ms per pass", "ms per frame", "CPU ms per frame", "frames/s",
                          title="the engine's batch curve (no server)")
            for r in rows:
                table.add_row(str(r["threads"]), str(r["batch"]), f"{r['pass_ms']:.1f}", f"{r['ms_per_frame']:.2f}",
                              f"{r['cpu_ms_per_frame']:.2f}", f"{r['frames_per_s']:.0f}")
            console.print(table)
        if "broadcast" not in args.skip:
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
        if "learners" not in args.skip:
            rows = bench_learners(bundle, args.max_sessions, args.session_seconds, args.workers, args.balancer)
            results["learners"] = rows
            table = Table("sessions", "fps min / median", "dropped", "audio->recv p50/p95 ms", "server CPU %", "keeps 25 fps",
                          title=f"learner sessions, {args.session_seconds:g} s of real-time audio each, {args.workers} worker(s)"
                                f"{' behind HAProxy' if args.workers > 1 or args.balancer else ''}")
            for r in rows:
                table.add_row(str(r["sessions"]), f"{r['fps_min']:.1f} / {r['fps_median']:.1f}", str(r["dropped"]),
                              f"{r['audio_to_receive_p50_ms']:.1f} / {r['audio_to_receive_p95_ms']:.1f}",
                              f"{r['server_cpu_percent']:.0f}", "yes" if r["keeps_25fps"] else "no")
            console.print(table)
            kept = [r["sessions"] for r in rows if r["keeps_25fps"]]
            console.print(f"learner sessions that keep 25 fps: {max(kept) if kept else 0} ({args.workers} worker(s))")
        if args.comparisons:
            c = bench_class(bundle, args.comparisons, args.workers, args.compare_seconds, compare_here=args.compare_here,
                            balancer=args.balancer)
            results["class"] = c
            table = Table("learners", "workers", "answered", "comparison p50 / p95 / max s", "fps min / median while comparing",
                          "sessions at 25 fps", "fps min before", "server CPU %", "errors",
                          title="a class answering at once: every learner's attempt ends together, every one asks for its comparison")
            table.add_row(str(c["learners"]), str(c["workers"]), f"{c['answered']}/{c['learners']}",
                          f"{c['comparison_p50_s']:.2f} / {c['comparison_p95_s']:.2f} / {c['comparison_max_s']:.2f}",
                          f"{c['fps_min_during']:.1f} / {c['fps_median_during']:.1f}", f"{c['sessions_at_25fps_during']}/{c['learners']}",
                          f"{c['fps_min_before']:.1f}", f"{c['server_cpu_percent']:.0f}", "; ".join(c["errors"]) or "none")
            console.print(table)
        load = os.getloadavg()
        results["load_after"] = load
        console.print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0

