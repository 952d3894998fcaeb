"""`rtmri serve --workers 2` behind a real HAProxy: a worker sent SIGTERM drains (its learners,
the page among them, are told to move and go; it exits), and the page, the token, TLS and the
references work through the balancer as with one process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import soundfile
from websockets.sync.client import connect

from helpers_cluster import FPS, Crowd, cluster, needs_haproxy, open_page, page_api, references, stats  # noqa: F401 (fixtures)
from rtmri.audio import SAMPLE_RATE
from rtmri.streamer.benchmarks.signals import bursts

pytestmark = needs_haproxy


def test_sigterm_drains_a_worker_its_learners_move_and_it_exits(cluster, tmp_path):
    """4 learners: the page in Chromium and 3 clients that behave as the page does (4 clients
    where there is no Chromium)."""
    sync_api = page_api()
    c = cluster("--drain-s", "5")
    with contextlib.ExitStack() as stack:
        page = None
        if sync_api is not None:
            microphone = tmp_path / "mic.wav"
            soundfile.write(microphone, bursts(3.0, seed=6), SAMPLE_RATE)
            playwright = stack.enter_context(sync_api.sync_playwright())
            browser, page, errors = open_page(playwright, c.url, microphone)
            stack.callback(browser.close)
            page.wait_for_function("() => window.rtmriStats.state === 'open'", timeout=20000)
            page.click("#mic")
        crowd = Crowd(c.ws, 4 - (page is not None))
        stack.callback(crowd.close)
        crowd.wait_connected()
        if page is not None:
            page.wait_for_function("() => window.rtmriStats.painted >= 25", timeout=20000)
        victim = stats(page)["worker"] if page is not None else crowd.learners[0].record.welcomes[-1][1]
        pid = c.worker_pid(victim)
        told_at = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        on_victim = [learner for learner in crowd.learners if learner.record.worker_at(told_at) == victim]
        if page is not None:
            page.wait_for_function(f"() => window.rtmriStats.worker && window.rtmriStats.worker !== '{victim}'", timeout=10000)
            assert time.monotonic() - told_at < 2.0  # the page moved at once, told by its server
            assert page.is_visible("#connection-notice") and stats(page)["micRunning"]
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
        assert min(moved_fps, default=FPS) >= 0.8 * FPS, moved_fps
        if page is not None:
            painted = stats(page)["painted"]
            page.wait_for_timeout(1000)
            assert stats(page)["painted"] - painted >= 0.8 * FPS  # its microphone streams on the new worker
            assert not errors, errors


def test_the_page_token_tls_and_references_work_through_the_balancer(cluster, tmp_path):
    """TLS ends at HAProxy; every worker holds the token and the same references."""
    if not Path("/usr/bin/openssl").exists():
        pytest.skip("needs openssl to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    c = cluster("--token", "s3cret", "--tls-cert", str(cert), "--tls-key", str(key))
    assert c.url.startswith("https://") and c.stdout[0].rstrip().endswith("#token=s3cret"), c.log()
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with urllib.request.urlopen(c.url, context=context, timeout=10) as page:
        assert page.status == 200 and "Content-Security-Policy" in page.headers
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(c.url + "references", context=context, timeout=10)
    assert refused.value.code == 403
    listed = []
    for _ in range(4):  # whichever worker answers, the same references
        with urllib.request.urlopen(c.url + "references?token=s3cret", context=context, timeout=10) as response:
            listed.append([(r["id"], r["name"], r["frames"]) for r in json.loads(response.read())])
    assert listed[0] and all(entry == listed[0] for entry in listed)
    for _ in range(2):
        try:
            with connect(c.ws, ssl=context, compression=None, open_timeout=10) as ws:
                ws.send(json.dumps({"type": "hello", "token": "s3cret"}))
                welcome = json.loads(ws.recv(timeout=10))
        except (TimeoutError, OSError) as exc:
            raise AssertionError(f"no session through the balancer: {exc!r}\n{c.log()}") from exc
        assert welcome["worker"] in ("w1", "w2")
        assert [r["id"] for r in welcome["references"]] == [r[0] for r in listed[0]]
    with connect(c.ws, ssl=context, compression=None, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "hello", "token": "wrong"}))
        with pytest.raises(Exception):
            while True:
                ws.recv(timeout=10)
        assert ws.close_code == 1008
