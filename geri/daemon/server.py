"""`geri daemon`: the engine served over gRPC, with models kept warm between requests.

Safe by default: it listens on 127.0.0.1 (or a Unix socket with mode 0600); listening anywhere
else needs a token, checked on every call. It serves the Wolf service, the standard gRPC health
service and server reflection, with message sizes capped. It writes a small state file (address,
pid) so `geri ask` finds it and `geri daemon status|stop` can reach it. The settings file is
watched: a valid change is applied to the next requests without a restart, an invalid one is
logged and ignored. Every `routing.health_interval` seconds it asks the peers for their models
and probes every model, which keeps routing's reliability and the LAN registry current.
On SIGTERM (or SIGINT, or SIGHUP) health turns NOT_SERVING, new calls are refused, and calls
in flight on gRPC and HTTP together get `daemon.drain_seconds` to finish; those still running
then are cut (and logged as cancelled) before the engine closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from geri.daemon.auth import TokenAuth
from geri.daemon.checked import add_checked
from geri.daemon.inflight import InFlight
from geri.daemon.loops import loop_name
from geri.daemon.reflection import REFLECTION_V1, serve_reflection_v1
from geri.daemon.scheduler import Scheduler
from geri.daemon.servicers import DaemonState, WolfServicer
from geri.daemon.stats import StatsServicer, serve_prometheus
from geri.daemon.vision import VisionServicer
from geri.engine import Engine, open_engine
from geri.errors import ConfigError, GeriError
from geri.logs import configure
from geri.paths import Paths
from geri.selection.health import run_periodically
from geri.settings import Daemon, Settings, load_settings
from geri.wire._pb.geri.v1 import (
    stats_pb2,
    stats_pb2_grpc,
    vision_pb2,
    vision_pb2_grpc,
    wolf_pb2,
    wolf_pb2_grpc,
)

if TYPE_CHECKING:
    from geri.daemon.http import HttpServer

log = logging.getLogger("geri.daemon")
# how long calls cut at the end of the drain may take to settle their reservation and queue
# their row, which is quick: they only reach the request log's writer
SETTLE_CUT_SECONDS = 5.0
SERVICES = (
    wolf_pb2.DESCRIPTOR.services_by_name["WolfService"].full_name,
    vision_pb2.DESCRIPTOR.services_by_name["VisionService"].full_name,
    stats_pb2.DESCRIPTOR.services_by_name["StatsService"].full_name,
)


@dataclass(frozen=True, slots=True)
class Listening:
    address: str  # what clients dial: host:port or unix:/path
    pid: int
    token_file: str | None = None
    http: str | None = None  # the OpenAI-compatible HTTP API's base URL, when served


def read_token(options: Daemon) -> str | None:
    token = os.environ.get("GERI_DAEMON_TOKEN")
    if token is None and options.token_file is not None:
        try:
            token = options.token_file.expanduser().read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"Cannot read daemon.token_file {options.token_file}: {exc.strerror}."
            ) from exc
    return token or None


def is_loopback(host: str) -> bool:
    """
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class DaemonServer:
    """One daemon: build with the user's paths and settings, then `await run()`."""

    def __init__(
        self,
        paths: Paths,
        settings: Settings,
        engine: Engine | None = None,
        *,
        own_logging: bool = False,
    ) -> None:
        """`own_logging`: this process is the daemon, so its log follows the settings (and is
        set up again when they change); off when a test or a host program runs the server."""
        self.paths = paths
        self.settings = settings
        self.own_logging = own_logging
        options = settings.daemon
        self.token = read_token(options)
        if options.socket is None and not is_loopback(options.host) and not self.token:
            raise ConfigError(
                f"Listening on {options.host} exposes the daemon beyond this machine, so it "
                "needs a token: set daemon.token_file in the settings, or GERI_DAEMON_TOKEN."
            )
        engine = engine or open_engine(paths, settings)
        self.state = DaemonState(
            engine,
            Scheduler(
                options.max_queue,
                options.max_running,
                lambda model_id: self._model_limit(model_id),
            ),
        )
        size = options.max_message_mb * 1024 * 1024
        self.inflight = InFlight()
        self.server = grpc.aio.server(
            interceptors=[*([TokenAuth(self.token)] if self.token else []), self.inflight],
            options=[
                ("grpc.max_receive_message_length", size),
                ("grpc.max_send_message_length", size),
                # a port another process holds is refused, never shared with it
                ("grpc.so_reuseport", 0),
                # idle clients may keep their connection alive with pings every 5 s or more
                # (grpc-js and load balancers do) instead of being sent GOAWAY too_many_pings
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
                ("grpc.http2.max_ping_strikes", 0),
            ],
        )
        for add, servicer in (
            (wolf_pb2_grpc.add_WolfServiceServicer_to_server, WolfServicer),
            (vision_pb2_grpc.add_VisionServiceServicer_to_server, VisionServicer),
            (stats_pb2_grpc.add_StatsServiceServicer_to_server, StatsServicer),
        ):
            add_checked(add, servicer(self.state), self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        listed = (*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME, REFLECTION_V1)
        reflection.enable_server_reflection(listed, self.server)
        serve_reflection_v1(listed, self.server)
        self.state.engine.metrics.queue = lambda: (
            self.state.scheduler.waiting,
            sum(self.state.scheduler.running.values()),
        )
        self.stopping = asyncio.Event()
        self.listening: Listening | None = None
        self.metrics_server: asyncio.Server | None = None
        self.http_server: HttpServer | None = None

    def _model_limit(self, model_id: str) -> int:
        return self.state.capacities.get(model_id, 1)

    def bind(self) -> Listening:
        options = self.settings.daemon
        if options.socket is not None:
            path = options.socket.expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            _clear_stale_socket(path)
            old = os.umask(0o177)  # the socket is created 0600
            try:
                self.server.add_insecure_port(f"unix:{path}")
            finally:
                os.umask(old)
            address = f"unix:{path}"
        else:
            try:
                port = self.server.add_insecure_port(f"{options.host}:{options.port}")
            except RuntimeError:
                port = 0
            if port == 0:
                raise ConfigError(
                    f"Cannot listen on {options.host}:{options.port}: the port is in use (another "
                    "daemon?) or the address is not this machine's. Choose another with --port."
                )
            address = f"{options.host}:{port}"
        token_file = str(options.token_file) if options.token_file else None
        self.listening = Listening(address, os.getpid(), token_file)
        return self.listening

    def _configure_logging(self) -> None:
        if self.own_logging:
            keys = self.state.engine.keys
            options = self.settings.logging
            # stderr shows INFO, a line per call among it, unless the settings set a level
            chosen = "console_level" in options.model_fields_set
            console = options.console_level if chosen else "INFO"
            configure(options, self.paths.log_dir, secrets=keys.known, console_level=console)

    async def run(self, on_ready: Callable[[Listening], None] | None = None) -> None:
        self._configure_logging()
        listening = self.listening or self.bind()
        await self.server.start()
        loop = asyncio.get_running_loop()
        # SIGHUP too (the terminal closed), unless it was ignored at start (nohup)
        hangup = [] if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN else [signal.SIGHUP]
        for sig in (signal.SIGTERM, signal.SIGINT, *hangup):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        self._write_state(listening)
        log.info(
            "listening on %s (pid %s, event loop %s)",
            listening.address,
            listening.pid,
            loop_name(loop),
        )
        for service in ("", *SERVICES):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        if self.settings.daemon.preload:
            await self._preload()
        options = self.settings.daemon
        if options.metrics_port is not None:
            self.metrics_server = await serve_prometheus(
                self.state, options.metrics_host, options.metrics_port
            )
        if options.http_port is not None:
            listening = replace(listening, http=await self._serve_http(options))
            self._write_state(listening)
            log.info("serving the OpenAI-compatible API on %s/v1", listening.http)
        self.listening = listening
        if on_ready:
            on_ready(listening)
        watcher = asyncio.create_task(self._watch_settings())
        checker = asyncio.create_task(
            run_periodically(self._survey, self.settings.routing.health_interval, self.stopping)
        )
        try:
            await self.stopping.wait()
        finally:
            watcher.cancel()
            checker.cancel()
            await self.shutdown()

    async def _survey(self) -> None:
        """Find the peers' models, then probe every model: both feed routing."""
        router = self.state.engine.router
        try:
            await router.discover()
            await router.check_health()
        except GeriError as exc:
            log.warning("health checks failed: %s", exc)

    async def shutdown(self) -> None:
        """NOT_SERVING, refuse new calls, let in-flight ones finish, release everything."""
        await self.health.enter_graceful_shutdown()
        if self.metrics_server is not None:
            self.metrics_server.close()
        # work in flight on either API gets the drain time; health watchers, reflection
        # streams and idle connections do not
        drained = await self.inflight.drained(self.settings.daemon.drain_seconds)
        if self.http_server is not None:
            await self.http_server.stop()
        await self.server.stop(0)
        if not drained:  # the calls just cut are still settling their budget and their row
            await self.inflight.drained(SETTLE_CUT_SECONDS)
        await self.state.engine.aclose()
        with contextlib.suppress(OSError):
            self.paths.daemon_state.unlink()

    async def _preload(self) -> None:
        engine = self.state.engine
        default = await engine.default_model()
        if default is None:
            return
        try:
            model = await engine.get_model(default)
            if model.location == "local":
                await engine.counter(model).text("warm up")
        except GeriError as exc:
            log.warning("could not preload %s: %s", default, exc)

    async def _watch_settings(self) -> None:
        path = self.paths.settings_file
        seen = _mtime(path)
        while True:
            await asyncio.sleep(self.settings.daemon.reload_interval)
            now = _mtime(path)
            if now == seen:
                continue
            seen = now
            try:
                settings = load_settings(path)
            except ConfigError as exc:
                log.error("settings not reloaded, the file is invalid: %s", exc)
                continue
            except Exception:  # whatever the file holds, the watcher keeps watching
                log.exception("settings not reloaded: reading %s failed", path)
                continue
            self.settings = settings
            self.state.engine.reload(settings)
            self._configure_logging()
            log.info("settings reloaded from %s", path)

    async def _serve_http(self, options: Daemon) -> str:
        from geri.daemon.http import HttpServer, build_app

        app = build_app(
            self.state,
            token=self.token,
            max_bytes=options.max_message_mb * 1024 * 1024,
            inflight=self.inflight,
            metrics=self.state.engine.metrics.prometheus,
        )
        self.http_server = HttpServer(app, options.host, options.http_port or 0)
        return await self.http_server.start()

    def _write_state(self, listening: Listening) -> None:
        path = self.paths.daemon_state
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "address": listening.address,
                    "pid": listening.pid,
                    "token_file": listening.token_file,
                    "http": listening.http,
                }
            )
        )


def _clear_stale_socket(path: Path) -> None:
    """Make room for the daemon's socket at `path`: only a socket no process listens on is
    removed; anything else there (a file, a directory, a live socket) is refused."""
    import socket
    import stat

    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"{path} exists and is not a socket; choose another --socket path.")
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink()  # stale: left by a daemon that is gone
            return
        except OSError as exc:
            raise ConfigError(f"Cannot use the socket {path}: {exc.strerror}.") from None
    raise ConfigError(f"Another process is listening on {path}; stop it or choose another path.")


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns / 1e9
    except OSError:
        return None
