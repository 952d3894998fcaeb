"""`rtmri serve --workers 2` in its own process, a crowd of learners that behave as the page
does, and the page in Chromium: what tests/test_serve_workers*.py share."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import soundfile

from rtmri.audio import SAMPLE_RATE
from rtmri.streamer.benchmarks.learner_client import Learner
from rtmri.streamer.benchmarks.signals import bursts

HAPROXY = Path("/usr/sbin/haproxy")
CHROMIUM = Path("/usr/bin/chromium")
FPS = 25
needs_haproxy = pytest.mark.skipif(not HAPROXY.exists(), reason="needs HAProxy at /usr/sbin/haproxy "
                                   "(Debian: apt-get install haproxy; .ci/run installs it)")


class Cluster:
    """`rtmri serve --workers 2` in its own process. Its stdout and stderr (the workers' and
    HAProxy's too) are read all the time: a pipe nobody reads fills, and a worker that logs
    into a full pipe stops answering."""

    def __init__(self, bundle, references: Path, *extra: str) -> None:
        command = [sys.executable, "-m", "rtmri.cli", "serve", "--bundle", str(bundle), "--mode", "learner", "--workers", "2",
                   "--port", "0", "--references", str(references), "--max-sessions", "8", "--compare-here", *extra]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        threading.Thread(target=lambda: self.stderr.extend(self.process.stderr), daemon=True).start()
        line = self.process.stdout.readline()
        self.stdout.append(line)
        threading.Thread(target=lambda: self.stdout.extend(self.process.stdout), daemon=True).start()
        match = re.search(r"open ((https?)://127\.0\.0\.1:(\d+)/)", line)
        if not match:
            self.process.kill()
            raise AssertionError(f"the cluster did not start: {line!r} {''.join(self.stderr)}")
        self.url = match.group(1)
        self.ws = f"{'wss' if match.group(2) == 'https' else 'ws'}://127.0.0.1:{match.group(3)}/ws"

    def log(self) -> str:
        """What the command, its workers and HAProxy printed so far (for a failing test's message)."""
        return "".join(self.stdout[-40:]) + "".join(self.stderr[-80:])

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


def references_folder(tmp_path) -> Path:
    folder = tmp_path / "refs"
    folder.mkdir()
    soundfile.write(folder / "native.wav", bursts(1.0, seed=9), SAMPLE_RATE)
    return folder


@pytest.fixture
def references(tmp_path) -> Path:
    """A references folder (references_folder) for a test module that imports this fixture."""
    return references_folder(tmp_path)


@pytest.fixture
def cluster(make_tiny_bundle, references):
    """start(*extra) -> a Cluster of the tiny bundle and the references; all stopped after."""
    running = []

    def start(*extra: str) -> Cluster:
        running.append(Cluster(make_tiny_bundle(size=64).path, references, *extra))
        return running[-1]

    yield start
    for c in running:
        c.stop()
        print(c.log())  # pytest shows it where the test failed


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


def page_api():
    """Playwright's sync API where Chromium and Playwright are installed (.ci/run installs both),
    else None: the tests then leave the page's own checks out."""
    if not CHROMIUM.exists() or importlib.util.find_spec("playwright") is None:
        return None
    return importlib.import_module("playwright.sync_api")
