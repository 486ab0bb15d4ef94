"""Hypercorn's multi-worker master, with one listening socket per worker.

Hypercorn's own master binds one socket and hands it to every worker. Each worker's
asyncio accept loop then takes every connection waiting on it (up to the backlog) at each
wake-up, so a client that opens its keep-alive connections at once (a load balancer, wrk)
often lands all of them on one worker while the others idle. Here each worker opens its
own socket on the same address with SO_REUSEPORT (Hypercorn sets it when `workers > 1`),
and the kernel spreads new connections over the workers' sockets by their addresses.
A worker only listens once its app has started, so nothing queues on a worker that is
not ready. Signals and exit codes follow Hypercorn's master (SIGHUP restarts workers).
"""

from __future__ import annotations

import signal
import socket
from multiprocessing import get_context
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

from hypercorn.config import Config


class AddressInUse(Exception):
    """Something else listens on the address to bind."""


def _check_free(config: Config) -> None:
    """Fail before forking when a bind address is taken: probed without SO_REUSEPORT, so
    another instance's reuse-port sockets count as taken too (they would share traffic)."""
    for bind in config.bind:
        if bind.startswith(("unix:", "fd://")):
            continue
        host, _, port = bind.replace("[", "").replace("]", "").rpartition(":")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, int(port)))
            except OSError as exc:
                raise AddressInUse(f"cannot bind {bind}: {exc.strerror}") from None


def run(config: Config) -> int:
    """Serve `config` like `hypercorn.run.run`; with several workers, one socket each."""
    from hypercorn.asyncio.run import asyncio_worker
    from hypercorn.run import run as hypercorn_run

    if config.workers <= 1 or config.worker_class != "asyncio" or config.ssl_enabled:
        return hypercorn_run(config)
    _check_free(config)
    ctx = get_context("spawn")
    shutdown = ctx.Event()
    processes: list[BaseProcess] = []
    active = True

    def stop(*_: Any) -> None:
        nonlocal active
        active = False
        shutdown.set()

    def restart(*_: Any) -> None:
        shutdown.set()
        for process in processes:
            process.join()
        shutdown.clear()

    exitcode = 0
    while active:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited: the master stops workers
        while len(processes) < config.workers:
            worker = ctx.Process(target=asyncio_worker, kwargs={
                "config": config, "sockets": None, "shutdown_event": shutdown})
            worker.daemon = config.daemon
            worker.start()
            processes.append(worker)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGHUP, restart)
        wait([process.sentinel for process in processes])
        for ended in [p for p in processes if p.exitcode is not None]:
            ended.join()
            processes.remove(ended)
            if ended.exitcode and not exitcode:
                exitcode = ended.exitcode
        if exitcode:
            stop()
    for process in processes:
        process.join()
        exitcode = exitcode or process.exitcode or 0
    return exitcode
