"""A canary key must never surface: not in output, errors, logs, the store or any file.

The mock provider is hostile on purpose: its error bodies quote the key back, as some real APIs
do. geri runs as a real subprocess with the key in the environment, fails, retries, succeeds and
streams; then every byte it printed or wrote under GERI_HOME is searched for the key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

from tests.mockserver import MockServer, Reply

Geri = Callable[..., CompletedProcess[str]]
CANARY = "sk-canary-7f3a9c2e5b1d4f60aa"


def test_the_key_never_leaves_the_request_header(geri_cli: Geri, geri_home: Path) -> None:
    quoted = {"error": {"message": f"Incorrect API key provided: {CANARY}", "key": CANARY}}
    with MockServer() as server:
        settings = geri_home / "config" / "settings.json"
        settings.parent.mkdir(parents=True)
        settings.write_text(
            json.dumps(
                {
                    "models": [
                        {
                            "kind": "cloud",
                            "id": "canary-model",
                            "provider": "openai",
                            "model": "gpt-test",
                            "base_url": server.url + "/v1",
                        }
                    ],
                    "network": {"max_attempts": 2, "backoff_base": 0},
                }
            )
        )
        env = {"OPENAI_API_KEY": CANARY}
        outputs: list[CompletedProcess[str]] = []

        server.add(Reply(401, quoted))
        outputs.append(geri_cli("ask", "hi", "-m", "canary-model", env=env))
        server.add(Reply(500, quoted), Reply(500, quoted))
        outputs.append(geri_cli("ask", "hi", "-m", "canary-model", "--no-stream", env=env))
        server.add(
            Reply(429, quoted, headers={"retry-after": "0"}),
            Reply(events=['{"choices":[{"delta":{"content":"ok"},"finish_reason":"stop"}]}']),
        )
        outputs.append(geri_cli("ask", "hi", "-m", "canary-model", "--json", env=env))
        outputs.append(geri_cli("logs", "--json", env=env))
        outputs.append(geri_cli("keys", "list", "--json", env=env))
        outputs.append(geri_cli("config", "show", env=env))

    assert [p.returncode for p in outputs] == [1, 1, 0, 0, 0, 0]
    assert "refused" in outputs[0].stderr
    assert json.loads(outputs[2].stdout)["text"] == "ok"
    # the key really was sent, in the header and only there
    assert all(r.headers["authorization"] == f"Bearer {CANARY}" for r in server.requests)
    assert not any(CANARY in r.path or CANARY.encode() in r.body for r in server.requests)

    for proc in outputs:
        assert CANARY not in proc.stdout
        assert CANARY not in proc.stderr
    files = [p for p in geri_home.rglob("*") if p.is_file() and p.name != "test-keyring.json"]
    assert any(p.name.startswith("geri.db") for p in files)
    for path in files:
        assert CANARY.encode() not in path.read_bytes(), path
    assert "sk-…60aa" in outputs[0].stderr  # what the server quoted, masked
