"""`rtmri serve --workers 2` for real: two worker processes behind Debian's HAProxy, learners
as the page is one (rtmri.streamer.benchmarks.learner_client) and the page itself in
Chromium. A worker killed with SIGKILL: its learners are back on the other within 2 s (the
page says so and keeps the attempt it recorded), the other worker's learners keep 25 fps.
A worker sent SIGTERM drains: its learners are told to move, go, and it exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import soundfile
from websockets.sync.client import connect

from rtmri.audio import SAMPLE_RATE
from rtmri.streamer.benchmarks.learner_client import Learner
from rtmri.streamer.benchmarks.signals import bursts

HAPROXY = Path("/usr/sbin/haproxy")
CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not HAPROXY.exists(), reason="needs HAProxy at /usr/sbin/haproxy "
                                "(Debian: apt-get install haproxy; .ci/run installs it)")
LEARNERS = 8
BACK_WITHIN_S = 2.0
FPS = 25
START_TIMEOUT_S = 120


class Cluster:
    """`rtmri serve --workers 2` in its own process."""

    def __init__(self, bundle, references: Path, *extra: str) -> None:
        command = [sys.executable, "-m", "rtmri.cli", "serve", "--bundle", str(bundle), "--mode", "learner", "--workers", "2",
                   "--port", "0", "--references", str(references), "--max-sessions", "8", "--compare-here", *extra]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        threading.Thread(target=lambda: self.stderr.extend(self.process.stderr), daemon=True).start()
        line = self.process.stdout.readline()
        match = re.search(r"open (http://127\.0\.0\.1:(\d+)/)", line)
        if not match:
            self.process.kill()
            raise AssertionError(f"the cluster did not start: {line!r} {''.join(self.stderr)}")
        self.url = match.group(1)
        self.ws = f"ws://127.0.0.1:{match.group(2)}/ws"

    def worker_pid(self, name: str) -> int:
        """The pid of the worker process of that name (a child of the command)."""
        for child in Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"--worker-name" in cmdline and cmdline[cmdline.index(b"--worker-name") + 1].decode() == name:
                return int(child)
        raise AssertionError(f"no worker {name}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Crowd:
    """Learners on their own event loop in a thread (the test's thread drives Chromium)."""

    def __init__(self, url: str, count: int) -> None:
        self.learners = [Learner(url, bursts(4.0, seed=i), seed=i) for i in range(count)]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stop_event = asyncio.run_coroutine_threadsafe(self._event(), self.loop).result()
        self.tasks = []
        for learner in self.learners:  # one after another, as a class arrives
            self.tasks.append(asyncio.run_coroutine_threadsafe(learner.run(self.stop_event), self.loop))
            time.sleep(0.1)

    async def _event(self) -> asyncio.Event:
        return asyncio.Event()

    def wait_connected(self, timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while not all(learner.record.frames for learner in self.learners):
            assert time.monotonic() < end, "not every learner got frames"
            time.sleep(0.1)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        for task in self.tasks:
            try:
                task.result(10)
            except Exception:
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def references(tmp_path) -> Path:
    folder = tmp_path / "refs"
    folder.mkdir()
    soundfile.write(folder / "native.wav", bursts(1.0, seed=9), SAMPLE_RATE)
    return folder


@pytest.fixture
def cluster(make_tiny_bundle, references):
    running = []

    def start(*extra: str) -> Cluster:
        running.append(Cluster(make_tiny_bundle(size=64).path, references, *extra))
        return running[-1]

    yield start
    for c in running:
        c.stop()


def open_page(playwright, url: str, microphone: Path):
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={microphone}",
        "--autoplay-policy=no-user-gesture-required"])
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    return browser, page, errors


def stats(page) -> dict:
    return page.evaluate("() => window.rtmriStats")


def test_a_killed_workers_learners_are_back_on_the_other_within_2_s(cluster, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    c = cluster()
    microphone = tmp_path / "mic.wav"
    soundfile.write(microphone, bursts(3.0, seed=5), SAMPLE_RATE)
    crowd = Crowd(c.ws, LEARNERS - 1)
    with sync_api.sync_playwright() as playwright:
        browser, page, errors = open_page(playwright, c.url, microphone)
        try:
            page.wait_for_function("() => window.rtmriStats.state === 'open'", timeout=20000)
            page.click("#mic")
            crowd.wait_connected()
            page.wait_for_function("() => window.rtmriStats.painted >= 25", timeout=20000)
            on = [learner.record.welcomes[-1][1] for learner in crowd.learners] + [stats(page)["worker"]]
            assert sorted(set(on)) == ["w1", "w2"] and abs(on.count("w1") - on.count("w2")) <= 2, on  # spread over both

            # The page records an attempt (held in the browser).
            page.click("#record")
            page.wait_for_timeout(1000)
            page.click("#record")
            page.wait_for_function("() => !document.getElementById('replay').disabled", timeout=5000)

            victim = stats(page)["worker"]
            survivor = "w2" if victim == "w1" else "w1"
            time.sleep(2.0)
            killed_at = time.monotonic()
            os.kill(c.worker_pid(victim), signal.SIGKILL)
            page.wait_for_function("() => window.rtmriStats.reconnects >= 1", timeout=10000)
            time.sleep(3.0)
            after = stats(page)
            assert after["reconnectMs"] < BACK_WITHIN_S * 1000, after["reconnectMs"]
            assert after["worker"] == survivor and after["state"] == "open"
            assert page.is_visible("#connection-notice") and survivor in page.inner_text("#connection-notice")
            assert not page.is_disabled("#replay")  # the recorded attempt survived
            painted = after["painted"]
            page.wait_for_timeout(1000)
            assert stats(page)["painted"] - painted >= 0.8 * FPS  # the microphone streams on the new worker
            assert not errors, errors

            moved = [learner for learner in crowd.learners if learner.record.worker_at(killed_at) == victim]
            stayed = [learner for learner in crowd.learners if learner.record.worker_at(killed_at) == survivor]
            assert moved and stayed
            for learner in moved:
                back = [t for t, worker, _, _ in learner.record.frames if t > killed_at and worker == survivor]
                assert back and back[0] - killed_at < BACK_WITHIN_S, (back[:1], killed_at)
                print(f"moved learner: frames again {back[0] - killed_at:.2f} s after the kill")
            for learner in stayed:  # noticed nothing: frames at 25 fps before and after
                before = learner.record.fps(killed_at - 2.0, killed_at)
                during = learner.record.fps(killed_at, killed_at + 3.0)
                assert before >= 0.9 * FPS and during >= 0.9 * FPS, (before, during)
                assert len(learner.record.welcomes) == 1
                print(f"learner on {survivor}: {before:.1f} fps before the kill, {during:.1f} fps in the 3 s after")
            print(f"page: back on {after['worker']} {after['reconnectMs']:.0f} ms after losing {victim}")
        finally:
            browser.close()
            crowd.close()


def test_sigterm_drains_a_worker_its_learners_move_and_it_exits(cluster):
    c = cluster("--drain-s", "5")
    crowd = Crowd(c.ws, 4)
    try:
        crowd.wait_connected()
        victim = crowd.learners[0].record.welcomes[-1][1]
        pid = c.worker_pid(victim)
        told_at = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        on_victim = [learner for learner in crowd.learners if learner.record.worker_at(told_at) == victim]
        end = time.monotonic() + 10
        while not all(learner.record.worker_at(time.monotonic()) not in (victim, None) for learner in on_victim):
            assert time.monotonic() < end, "the learners did not move"
            time.sleep(0.1)
        for learner in on_victim:
            assert learner.record.moves and learner.record.moves[0] - told_at < 1.0  # told to move, at once
        # The drained worker exits (its sessions are gone) well before the deadline.
        while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
            assert time.monotonic() - told_at < 5.0 + 2.0, "the drained worker did not exit"
            time.sleep(0.1)
        time.sleep(2.0)
        now = time.monotonic()
        moved_fps = [learner.record.fps(now - 1.5, now - 0.5) for learner in on_victim]
        assert min(moved_fps) >= 0.8 * FPS, moved_fps
    finally:
        crowd.close()


def test_the_page_token_tls_and_references_work_through_the_balancer(make_tiny_bundle, references, tmp_path):
    """TLS ends at HAProxy; every worker holds the token and the same references."""
    if not Path("/usr/bin/openssl").exists():
        pytest.skip("needs openssl to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    command = [sys.executable, "-m", "rtmri.cli", "serve", "--bundle", str(make_tiny_bundle(size=64).path), "--mode", "learner",
               "--workers", "2", "--port", "0", "--references", str(references), "--token", "s3cret", "--compare-here",
               "--tls-cert", str(cert), "--tls-key", str(key)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"open (https://127\.0\.0\.1:(\d+)/)#token=s3cret", line)
        assert match, line
        base, port = match.group(1), match.group(2)
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        with urllib.request.urlopen(base, context=context, timeout=10) as page:
            assert page.status == 200 and "Content-Security-Policy" in page.headers
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "references", context=context, timeout=10)
        assert refused.value.code == 403
        listed = []
        for _ in range(4):  # whichever worker answers, the same references
            with urllib.request.urlopen(base + "references?token=s3cret", context=context, timeout=10) as response:
                listed.append([(r["id"], r["name"], r["frames"]) for r in json.loads(response.read())])
        assert listed[0] and all(entry == listed[0] for entry in listed)
        for _ in range(2):
            with connect(f"wss://127.0.0.1:{port}/ws", ssl=context, compression=None) as ws:
                ws.send(json.dumps({"type": "hello", "token": "s3cret"}))
                welcome = json.loads(ws.recv(timeout=10))
                assert welcome["worker"] in ("w1", "w2")
                assert [r["id"] for r in welcome["references"]] == [r[0] for r in listed[0]]
        with connect(f"wss://127.0.0.1:{port}/ws", ssl=context, compression=None) as ws:
            ws.send(json.dumps({"type": "hello", "token": "wrong"}))
            with pytest.raises(Exception):
                while True:
                    ws.recv(timeout=10)
            assert ws.close_code == 1008
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
