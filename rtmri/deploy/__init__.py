"""Serving beyond one process: `rtmri serve --workers N` (workers.py: N worker processes and
one HAProxy on this machine) and `rtmri deploy haproxy` (cli.py: the configuration for
workers on several machines). haproxy.py writes the configuration both use.
"""
