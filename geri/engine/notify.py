"""Notices beyond the terminal: a command or a webhook from the settings.

The engine hands every notice (a fallback, a budget alert, a return to the cloud) to the caller
in the result and the stream, so the CLI prints it on stderr and the daemon sends it to its
client. `Notifier` also delivers it to the user's own command (run without a shell, the text on
stdin and in GERI_NOTICE) and webhook (a JSON POST), in the background: a slow or broken hook
is logged and never delays or fails a request. `notifications.enabled = false` silences all.
The text is redacted first, and the command inherits no variable that holds a key, a token or a
password (by name, or by value: any key geri knows).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from geri.redaction import known, redact
from geri.settings import Notifications
from geri.types import Notice

if TYPE_CHECKING:
    import httpx

# environment variables a notification command never inherits: keys, tokens, passwords
SECRET_NAME = re.compile(r"(?i)(api_?key|token|secret|passw(or)?d|credential)")
log = logging.getLogger("geri.notify")


class Notifier:
    def __init__(
        self,
        settings: Callable[[], Notifications],
        http: Callable[[], httpx.AsyncClient],
        now: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._http = http
        self._now = now
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self._settings().enabled

    def send(self, notice: Notice) -> None:
        """Deliver `notice` to the configured command and webhook, without waiting."""
        settings = self._settings()
        if not settings.enabled:
            return
        notice = replace(notice, message=redact(notice.message))
        jobs = []
        if settings.command:
            jobs.append(self._run(settings.command, notice, settings.timeout))
        if settings.webhook:
            jobs.append(self._post(settings.webhook, notice, settings.timeout))
        for job in jobs:
            task = asyncio.create_task(job)
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for notices still being delivered (the engine does as it closes)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=self._settings().timeout + 1)

    async def _run(self, command: tuple[str, ...], notice: Notice, limit: float) -> None:
        keys = set(known())
        env = {
            **{
                name: value
                for name, value in os.environ.items()
                if not SECRET_NAME.search(name) and value.strip() not in keys
            },
            "GERI_NOTICE": notice.message,
            "GERI_NOTICE_KIND": notice.kind,
        }
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            log.warning("notification command %s could not start: %s", command[0], exc.strerror)
            return
        try:
            await asyncio.wait_for(process.communicate(notice.message.encode()), limit)
        except TimeoutError:
            process.kill()
            await process.wait()
            log.warning("notification command %s took over %s s; stopped", command[0], limit)
            return
        if process.returncode:
            log.warning("notification command %s exited %s", command[0], process.returncode)

    async def _post(self, url: str, notice: Notice, limit: float) -> None:
        import httpx

        body = {"kind": notice.kind, "message": notice.message, "at": self._now().isoformat()}
        try:
            response = await self._http().post(url, json=body, timeout=limit)
        except httpx.HTTPError as exc:
            log.warning("notification webhook failed: %s", type(exc).__name__)
            return
        if response.status_code >= 400:
            log.warning("notification webhook answered %s", response.status_code)
