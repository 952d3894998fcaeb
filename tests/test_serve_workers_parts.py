"""The parts of serving behind a balancer, each alone: the agent check's reply, the
comparison queue, the Prometheus endpoint, a full or draining worker's refusal, the HAProxy
configuration (checked by HAProxy itself, and its retry of a refusing worker on another,
with stand-in workers), `rtmri deploy haproxy`, and the shipped lessons served by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from rtmri.bundle.engine import Engine
from rtmri.deploy import cli as deploy_cli
from rtmri.deploy.haproxy import WorkerAddress, haproxy_config
from rtmri.deploy.workers import free_ports
from rtmri.demo import shipped
from rtmri.streamer.benchmarks.signals import bursts
from rtmri.streamer.server.agent import agent_reply
from rtmri.streamer.server.app import RtmriServer, ServerOptions, ServerThread
from rtmri.streamer.server.clients import Client
from rtmri.streamer.server.comparisons import ComparisonQueue
from rtmri.streamer.server.metrics import ServerMetrics
from rtmri.streamer.server.protocol import COMPARISON, audio_message, control
from rtmri.streamer.server.remote_comparer import NICE, RemoteComparer
from rtmri.streamer.server.security import Limits

HAPROXY = Path("/usr/sbin/haproxy")
needs_haproxy = pytest.mark.skipif(not HAPROXY.exists(),
                                   reason="needs HAProxy at /usr/sbin/haproxy (Debian: apt-get install haproxy)")


def test_the_agent_weighs_a_worker_by_its_free_places_and_drains_a_full_one():
    assert agent_reply(0, 8, False) == "up ready 100%\n"
    assert agent_reply(6, 8, False) == "up ready 25%\n"
    assert agent_reply(7, 8, False) == "up ready 12%\n"
    assert agent_reply(8, 8, False) == "drain\n"
    assert agent_reply(0, 8, True) == "drain\n"


# --- the comparison queue ---------------------------------------------------------------

class StubSocket:
    remote_address = ("127.0.0.1", 0)


class RecordingComparer:
    """Takes requests and answers them when told (as LessonComparer does, via client.say)."""

    def __init__(self) -> None:
        self.handed: list = []

    def request(self, client, request, cut=None) -> None:
        self.handed.append((client, request))

    def answer(self, k: int) -> None:
        client, request = self.handed[k]
        client.say(control(COMPARISON, id=request["id"], comparison={"score": 50}))

    def audio(self, client, offset, samples) -> None:
        pass

    def frame(self, client, index, codec, image, epoch) -> None:
        pass

    def leave(self, client) -> None:
        pass


def answers(client: Client) -> list[dict]:
    return [json.loads(text) for text in client.controls]


def test_the_comparison_bound_hands_requests_over_at_once_and_says_busy_past_it():
    comparer, metrics = RecordingComparer(), ServerMetrics()
    queue = ComparisonQueue(comparer, max_outstanding=4, metrics=metrics)
    clients = [Client(StubSocket(), Limits()) for _ in range(6)]
    for k, client in enumerate(clients):
        queue.request(client, {"type": "compare", "id": k})
    assert [c for c, _ in comparer.handed] == clients[:4]  # at once: the comparer cuts each attempt now
    assert metrics.comparisons_queued._value.get() == 4
    for client in clients[4:]:  # past the bound: told at once
        (busy,) = answers(client)
        assert busy["type"] == COMPARISON and "try again" in busy["error"] and busy["id"] == clients.index(client)
    assert metrics.comparisons_refused._value.get() == 2
    queue.leave(clients[3])  # gone: its place is free
    comparer.answer(0)
    assert metrics.comparisons_queued._value.get() == 2
    queue.request(clients[4], {"type": "compare", "id": 9})
    assert comparer.handed[-1] == (clients[4], {"type": "compare", "id": 9})
    assert answers(clients[0])[0]["comparison"] == {"score": 50}
    assert "rtmri_comparison_seconds_count 1.0" in metrics.text().decode()


def test_one_request_per_learner_and_a_busy_answer_frees_nothing():
    comparer = RecordingComparer()
    queue = ComparisonQueue(comparer, max_outstanding=1)
    a, b = Client(StubSocket(), Limits()), Client(StubSocket(), Limits())
    queue.request(a, {"id": 1})
    queue.request(a, {"id": 2})  # a's first is still being compared
    assert answers(a)[-1]["id"] == 2 and "still being compared" in answers(a)[-1]["error"]
    queue.request(b, {"id": 3})  # the bound is reached: b is told so, and a's place is not freed by these answers
    assert "try again" in answers(b)[-1]["error"]
    assert len(comparer.handed) == 1 and a in queue.outstanding
    comparer.answer(0)
    queue.request(b, {"id": 4})
    assert [r["id"] for _, r in comparer.handed] == [1, 4]


# --- one worker's server, in process ------------------------------------------------------

@pytest.fixture
def worker(make_tiny_bundle):
    running = []

    def start(**options):
        engine = Engine(make_tiny_bundle(size=64))
        engine.warm_up()
        limits = options.pop("limits", Limits())
        thread = ServerThread(RtmriServer(engine, ServerOptions(mode="learner", port=0, limits=limits, **options))).start()
        running.append(thread)
        return thread

    yield start
    for thread in running:
        thread.stop()


def ws_url(server) -> str:
    return f"ws://127.0.0.1:{server.port}/ws"


def hello(ws) -> dict:
    ws.send(json.dumps({"type": "hello"}))
    return json.loads(ws.recv(timeout=10))


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} not in the metrics"
    return float(match.group(1))


def test_the_metrics_endpoint_counts_a_learners_sessions_frames_and_latency(worker):
    server = worker(metrics_port=0).server
    audio = bursts(2.0, seed=3)
    with connect(ws_url(server), compression=None) as ws:
        hello(ws)
        ws.send(json.dumps({"type": "start"}))
        for at in range(0, len(audio), 320):
            ws.send(audio_message(at, audio[at:at + 320]))
            time.sleep(0.02)
        time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10) as response:
            text = response.read().decode()
        frames = 0
        while True:  # the frames the client has been sent so far
            try:
                message = ws.recv(timeout=0.2)
            except TimeoutError:
                break
            frames += isinstance(message, bytes)
    assert metric(text, "rtmri_sessions") == 1 and metric(text, "rtmri_clients") == 1
    sent = metric(text, "rtmri_frames_sent_total")
    assert 40 <= sent <= frames + 2, (sent, frames)  # 2 s of audio: 50 frames, less the lookahead held back
    assert metric(text, "rtmri_frame_latency_seconds_count") == sent
    p50 = metric(text, 'rtmri_frame_latency_recent_seconds{quantile="0.5"}')
    assert 0 < p50 < 1.0


def test_a_full_worker_behind_a_balancer_refuses_the_handshake_with_503(worker):
    server = worker(balanced=True, limits=Limits(max_sessions=1)).server
    with connect(ws_url(server), compression=None) as first:
        hello(first)
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url(server), compression=None)
        assert refused.value.response.status_code == 503 and b"full" in refused.value.response.body
        assert server.agent_reply() == "drain\n"
    deadline = time.monotonic() + 5
    while server.mode.joined:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert server.agent_reply() == "up ready 100%\n"


def test_draining_tells_learners_to_move_refuses_new_ones_and_stops_when_they_are_gone(worker):
    thread = worker(balanced=True, agent_port=0)
    server = thread.server
    with connect(ws_url(server), compression=None) as ws:
        hello(ws)
        server.drain(10.0)
        while True:
            message = ws.recv(timeout=5)
            if isinstance(message, str) and json.loads(message)["type"] == "move":
                break
        assert json.loads(message)["within_s"] == 10.0
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url(server), compression=None)
        assert refused.value.response.status_code == 503
        with socket.create_connection(("127.0.0.1", server.agent_port), timeout=5) as agent:
            assert agent.recv(100) == b"drain\n"
    started = time.monotonic()
    thread._thread.join(5)  # it stops once its last learner left, long before the deadline
    assert not thread._thread.is_alive() and time.monotonic() - started < 3.0


# --- HAProxy --------------------------------------------------------------------------------

def free_port() -> int:
    return free_ports(["127.0.0.1"])[0]


def test_the_ports_chosen_for_a_cluster_are_all_different_and_avoid_the_given_ones():
    """Chosen one at a time, 300 ports share one about half the time (and a worker that took
    HAProxy's public port stopped the cluster at its start in CI)."""
    first = free_ports(["127.0.0.1"] * 300)
    second = free_ports(["0.0.0.0"] + ["127.0.0.1"] * 299, avoid=tuple(first))
    assert len(set(first)) == 300 and len(set(second)) == 300
    assert not set(first) & set(second)


def stand_in_worker(status: int, hits: list, hold: threading.Event | None = None) -> ThreadingHTTPServer:
    """Answers every GET with status; with hold, only once hold is set (a connection that
    stays, as a learner's WebSocket does)."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if hold is not None:
                hold.wait(30)
            body = b"ok" if status == 200 else b"server full"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stand_in_agent(reply: bytes) -> socketserver.ThreadingTCPServer:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(reply)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_haproxy(tmp_path, workers: list[WorkerAddress]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(workers, ("127.0.0.1", port)))
    with open(tmp_path / "haproxy.log", "w") as log:  # a file: a pipe nobody reads fills and stops HAProxy
        haproxy = subprocess.Popen([str(HAPROXY), "-db", "-f", str(config)], stderr=log)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return haproxy, port
        except OSError:
            assert time.monotonic() < deadline, "HAProxy did not listen"
            time.sleep(0.1)


def stand_ins(statuses, replies, hold=None) -> tuple[list, list, list[WorkerAddress]]:
    """Stand-in workers answering with these statuses, their agents with these replies."""
    hits = [[] for _ in statuses]
    servers = [stand_in_worker(status, h, hold) for status, h in zip(statuses, hits)]
    agents = [stand_in_agent(reply) for reply in replies]
    workers = [WorkerAddress(f"w{i + 1}", "127.0.0.1", s.server_address[1], a.server_address[1], free_port())
               for i, (s, a) in enumerate(zip(servers, agents))]
    return hits, servers + agents, workers


@contextlib.contextmanager
def balanced_stand_ins(tmp_path, statuses, replies, hold=None):
    """HAProxy in front of stand-in workers (stand_ins); yields (hits, port); stops them all."""
    hits, stubs, workers = stand_ins(statuses, replies, hold)
    haproxy, port = start_haproxy(tmp_path, workers)
    try:
        yield hits, port
    finally:
        haproxy.terminate()
        haproxy.wait(10)
        for stub in stubs:
            stub.shutdown()


def get_all(port: int, count: int) -> list[int]:
    statuses = []
    for k in range(count):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ws?k={k}", timeout=10) as response:
            statuses.append(response.status)
    return statuses


@needs_haproxy
def test_haproxy_sends_a_request_a_full_worker_refused_to_another(tmp_path):
    with balanced_stand_ins(tmp_path, (503, 200), (b"up ready 100%\n",) * 2) as ((refused_hits, served_hits), port):
        assert get_all(port, 12) == [200] * 12
        assert refused_hits, "the full worker was never tried: the retry was not exercised"
        assert len(served_hits) == 12


@needs_haproxy
def test_haproxy_places_sessions_by_the_workers_agent_weights_and_sends_none_to_a_draining_one(tmp_path):
    # Sessions that stay (leastconn weighs the connections each worker holds by its weight):
    # a worker whose agent says 20 % free gets about a fifth of what one with 100 % free gets.
    hold = threading.Event()
    sessions = []
    with balanced_stand_ins(tmp_path, (200, 200), (b"up ready 20%\n", b"up ready 100%\n"), hold) as (hits, port):
        try:
            time.sleep(1.5)  # three agent checks
            sessions += [threading.Thread(target=get_all, args=(port, 1), daemon=True) for _ in range(12)]
            for session in sessions:
                session.start()
                time.sleep(0.05)
            deadline = time.monotonic() + 10
            while len(hits[0]) + len(hits[1]) < 12:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert len(hits[1]) >= 9 and 1 <= len(hits[0]) <= 3, (len(hits[0]), len(hits[1]))
        finally:  # the held sessions end before HAProxy and the stand-ins stop
            hold.set()
            for session in sessions:
                session.join(10)
    with balanced_stand_ins(tmp_path, (200, 200), (b"up ready 100%\n", b"drain\n")) as (hits, port):
        time.sleep(1.5)
        assert get_all(port, 10) == [200] * 10
        assert len(hits[0]) == 10 and not hits[1]


@needs_haproxy
def test_deploy_haproxy_writes_a_configuration_haproxy_accepts(tmp_path):
    out, targets = tmp_path / "haproxy.cfg", tmp_path / "targets.json"
    parser = __import__("argparse").ArgumentParser()
    deploy_cli.add_arguments(parser)
    args = parser.parse_args(["haproxy", "--worker", "10.0.0.11:9000", "--worker", "10.0.0.12:9100:9200:9300", "--bind", ":8443",
                              "--stats", "127.0.0.1:8404", "--out", str(out), "--prometheus-targets", str(targets)])
    assert deploy_cli.main(args) == 0
    check = subprocess.run([str(HAPROXY), "-c", "-f", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    text = out.read_text()
    assert "agent-addr 10.0.0.11 agent-port 9001" in text and "agent-port 9200" in text and "bind :8443" in text
    assert json.loads(targets.read_text())[0]["targets"] == ["10.0.0.11:9002", "10.0.0.12:9300"]
    bad = parser.parse_args(["haproxy", "--worker", "10.0.0.11"])
    with pytest.raises(Exception, match="HOST:PORT"):
        deploy_cli.main(bad)


# --- the shipped lessons --------------------------------------------------------------------

def test_learner_mode_without_references_serves_the_shipped_lessons(make_tiny_bundle):
    lessons = sorted(p.stem for p in shipped().lessons.glob("*.json"))
    assert lessons, "the package ships lessons"
    process = subprocess.Popen([sys.executable, "-m", "rtmri.cli", "serve", "--bundle", str(make_tiny_bundle(size=64).path),
                                "--mode", "learner", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
        assert match, line + process.stderr.read()
        with urllib.request.urlopen(match.group(1) + "references", timeout=10) as response:
            served = json.load(response)
    finally:
        process.terminate()
        process.wait(20)
    assert sorted(r["lesson"]["id"] for r in served) == lessons
    assert all(r["frames"] > 0 and r["original"] for r in served)


def test_the_bound_takes_on_no_longer_wait_than_its_recent_comparisons_allow(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("rtmri.streamer.server.comparisons.time.monotonic", lambda: clock[0])
    comparer = RecordingComparer()
    queue = ComparisonQueue(comparer, max_outstanding=50)
    first = Client(StubSocket(), Limits())
    queue.request(first, {"id": 0})
    clock[0] += 3.0  # one comparison took 3 s
    comparer.answer(0)
    clients = [Client(StubSocket(), Limits()) for _ in range(5)]
    for k, client in enumerate(clients):
        queue.request(client, {"id": k})
    # 3 s each: the fourth would be answered after 12 s; it and the fifth are told to come back
    assert len(queue.outstanding) == 3 and all("try again" in answers(c)[-1]["error"] for c in clients[3:])
    assert all(not answers(c) for c in clients[:3])


# --- the comparer in a process of its own ------------------------------------------------------

class EchoComparer:
    """In the comparing process: answers with what it was sent, its pid and its niceness."""

    def audio(self, client, offset, samples) -> None:
        raise AssertionError("the comparing process is handed each attempt's audio with its request")

    def frame(self, client, index, codec, image, epoch) -> None:
        raise AssertionError("the comparing process is handed each attempt's frames with its request")

    def request(self, client, request, cut=None) -> None:
        asyncio.get_running_loop().call_later(0.05, client.say, control(
            COMPARISON, id=request["id"], samples=len(cut.audio) if cut.audio is not None else None,
            frames=[[index, codec, image.decode()] for index, codec, image in cut.frames], pid=os.getpid(), nice=os.nice(0)))

    def leave(self, client) -> None:
        self.samples.pop(client, None)


def make_echo_comparer():
    return EchoComparer()


def make_no_comparer():
    return None


def test_the_remote_comparer_compares_in_a_lower_priority_process_and_answers_each_client():
    comparer = RemoteComparer(make_echo_comparer)
    try:
        clients = [Client(StubSocket(), Limits()) for _ in range(4)]

        async def scenario():
            for k, client in enumerate(clients):
                for chunk in range(8):
                    comparer.audio(client, 320 * chunk, np.zeros(320, np.float32))
                for index in range(4):  # live frames 0-3 at samples 0, 640, 1280, 1920
                    comparer.frame(client, index, "jpeg", f"{k}:{index}".encode(), 1)
                comparer.request(client, {"id": k, "start": 640, "end": 640 * (k + 2)})  # only the attempt goes
            comparer.leave(clients[2])  # gone before its answer: nothing is said to it
            deadline = time.monotonic() + 20
            while not all(c.controls for c in (clients[0], clients[1], clients[3])):
                assert time.monotonic() < deadline, "no answer from the comparing process"
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)

        asyncio.run(scenario())
        first, second = (json.loads(c.controls[0]) for c in clients[:2])
        assert (first["id"], first["samples"]) == (0, 640) and (second["id"], second["samples"]) == (1, 1280)
        # and only the attempt's live frames: those from its start to its end
        assert first["frames"] == [[1, "jpeg", "0:1"]] and second["frames"] == [[1, "jpeg", "1:1"], [2, "jpeg", "1:2"]]
        assert first["pid"] == comparer.process.pid != os.getpid()
        assert first["nice"] == os.nice(0) + NICE
        assert not clients[2].controls
        assert json.loads(clients[3].controls[0])["samples"] is None  # its span (to 3200) was never all kept: no audio went
    finally:
        comparer.close()
        comparer.process.join(10)
    assert not comparer.process.is_alive()  # its pipe closed: it ended


def test_a_remote_comparer_whose_factory_gives_none_is_an_error():
    with pytest.raises(RuntimeError, match="no comparer"):
        RemoteComparer(make_no_comparer)
