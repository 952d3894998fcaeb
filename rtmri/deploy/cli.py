"""rtmri deploy haproxy: the HAProxy configuration for `rtmri serve` workers on several machines.

On each worker machine:

    rtmri serve --bundle B --mode learner --host 10.0.0.11 --port 9000 --agent-port 9001 \\
        --metrics-port 9002 --token T --public-host school.example --cpus 0-1 --threads 2

(one such worker per 1-2 cores, each on its own ports: a process is held to about one core)

On the balancer:

    rtmri deploy haproxy --worker 10.0.0.11:9000 --worker 10.0.0.12:9000 --bind :443 \\
        --tls-pem /etc/haproxy/site.pem --stats 127.0.0.1:8404 --out /etc/haproxy/haproxy.cfg \\
        --prometheus-targets /etc/prometheus/rtmri.json
    haproxy -c -f /etc/haproxy/haproxy.cfg && systemctl reload haproxy

Every worker gets the same --token (the page's join URL carries it) and the same lessons.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rtmri import RtmriError
from rtmri.deploy.haproxy import haproxy_config, parse_address, parse_worker, prometheus_targets
from rtmri.files import atomic_write


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    haproxy = sub.add_parser("haproxy", help="haproxy.cfg for workers on several machines",
                             description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    haproxy.add_argument("--worker", action="append", required=True, metavar="HOST:PORT[:AGENT[:METRICS]]",
                         help="a worker's page/WebSocket port (agent and metrics ports default to PORT+1, PORT+2); repeat")
    haproxy.add_argument("--bind", default=":8765", help="the public address (default :8765, every address)")
    haproxy.add_argument("--tls-pem", help="certificate and key in one PEM file: HAProxy speaks https/wss")
    haproxy.add_argument("--stats", default="127.0.0.1:8404",
                         help="stats page (/stats), HAProxy's Prometheus exporter (/metrics) and the workers' metrics "
                              "(/workers/<name>/metrics) on this address (default 127.0.0.1:8404)")
    haproxy.add_argument("--out", help="write the configuration here (default: print it)")
    haproxy.add_argument("--prometheus-targets", metavar="FILE", help="write the workers' metrics targets (file_sd JSON) here")


def main(args) -> int:
    workers = [parse_worker(text, i) for i, text in enumerate(args.worker)]
    if args.tls_pem and not Path(args.tls_pem).is_file():
        raise RtmriError(f"--tls-pem {args.tls_pem}: no such file")
    config = haproxy_config(workers, parse_address(args.bind, "--bind"), parse_address(args.stats, "--stats"), args.tls_pem)
    if args.out:
        atomic_write(Path(args.out), config)
        print(f"rtmri deploy: {args.out} ({len(workers)} workers)", file=sys.stderr)
    else:
        sys.stdout.write(config)
    if args.prometheus_targets:
        atomic_write(Path(args.prometheus_targets), prometheus_targets(workers))
    return 0
