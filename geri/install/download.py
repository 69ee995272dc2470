"""Fetching a model file from the Hugging Face hub: resolved, resumable, verified, locked.

huggingface_hub resolves the file (the commit, the size, the hub's LFS sha256, where to fetch
it; `HF_ENDPOINT` and `HF_TOKEN` are honoured). The bytes are fetched here, with httpx, so that:

* they land in `NAME.part` and a later run, even after the process died, asks only for the rest
  (an HTTP range request) instead of starting over;
* the sha256 is computed as they arrive and checked, with the size and the GGUF header, before
  the file is renamed into place: nothing half-written or corrupt is ever at the final path;
* an exclusive lock on `NAME.lock` makes two installs of one model download it once: the second
  waits, then finds the verified file;
* progress is reported to a callback (the CLI draws a bar), and every failure is a clear
  `InstallError` that names the fix.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geri.errors import InstallError
from geri.install.catalog import CatalogEntry
from geri.providers.gguf import read_gguf

CHUNK = 1 << 20
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class RemoteFile:
    url: str
    size: int | None
    sha256: str | None
    commit: str | None


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_token() -> str | None:
    """HF_TOKEN, or the token saved by `hf auth login`."""
    from huggingface_hub import get_token

    return get_token()


def resolve(entry: CatalogEntry, endpoint: str, token: str | None) -> RemoteFile:
    """Where the catalog entry's file is, and what the hub says it is."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    url = hf_hub_url(entry.repo, entry.file, revision=entry.revision, endpoint=endpoint)
    page = f"{endpoint}/{entry.repo}"
    try:
        meta = get_hf_file_metadata(url, token=token or False, endpoint=endpoint, timeout=30)
    except GatedRepoError:
        raise InstallError(
            f"{entry.repo} is gated: accept its license at {page} while logged in, then set "
            "HF_TOKEN to an access token (or run 'hf auth login') and install again."
        ) from None
    except RepositoryNotFoundError:
        raise InstallError(
            f"The repository {entry.repo} was not found at {endpoint} (if it is private, "
            "set HF_TOKEN)."
        ) from None
    except (RemoteEntryNotFoundError, RevisionNotFoundError):
        raise InstallError(
            f"{entry.file} at revision {entry.revision} was not found in {page}."
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise InstallError(f"The model hub answered {status} for {url}.") from exc
    except Exception as exc:
        if _is_network_error(exc):
            raise InstallError(
                f"Cannot reach the model hub at {endpoint} ({exc}). Check the network, or "
                "point HF_ENDPOINT at a mirror."
            ) from exc
        raise
    etag = (meta.etag or "").strip('"').removeprefix("W/").strip('"')
    sha = etag if re.fullmatch(r"[0-9a-f]{64}", etag) else None
    return RemoteFile(meta.location, meta.size, sha, meta.commit_hash)


def fetch(
    remote: RemoteFile,
    target: Path,
    *,
    expected_sha256: str | None,
    expected_size: int | None,
    token: str | None = None,
    progress: Progress | None = None,
    on_wait: Callable[[], None] | None = None,
) -> Path:
    """Download `remote` to `target` (resuming, verifying, under a lock); returns `target`."""
    sha = expected_sha256 or remote.sha256
    size = expected_size or remote.size
    if sha is None:
        raise InstallError(
            f"No checksum is known for {target.name}: the catalog has none and the hub sent "
            "none, so the download could not be verified. Nothing was downloaded."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    with _exclusive(target.with_name(target.name + ".lock"), on_wait):
        if _verified(target, sha):
            if progress:
                progress(target.stat().st_size, size)
            return target
        hasher = hashlib.sha256()
        have = _hash_existing(part, hasher)
        if size is not None and have > size:
            part.unlink()
            hasher, have = hashlib.sha256(), 0
        have, hasher = _transfer(remote.url, part, have, hasher, size, token, progress)
        if size is not None and have != size:
            raise InstallError(
                f"The download of {target.name} ended at {have:,} of {size:,} bytes; run "
                "'geri install' again to resume it."
            )
        if hasher.hexdigest() != sha:
            part.unlink()
            raise InstallError(
                f"{target.name} failed verification: its sha256 is {hasher.hexdigest()}, "
                f"expected {sha}. The corrupt download was deleted and nothing was installed; "
                "run 'geri install' again."
            )
        read_gguf(part)
        os.replace(part, target)
        target.with_name(target.name + ".sha256").write_text(sha + "\n")
    return target


def sha256_of(path: Path, progress: Progress | None = None) -> str:
    hasher = hashlib.sha256()
    _hash_existing(path, hasher, progress)
    return hasher.hexdigest()


def _transfer(
    url: str,
    part: Path,
    have: int,
    hasher: Any,
    size: int | None,
    token: str | None,
    progress: Progress | None,
) -> tuple[int, Any]:
    import httpx

    headers = {"authorization": f"Bearer {token}"} if token else {}
    if have:
        headers["range"] = f"bytes={have}-"
    if progress:
        progress(have, size)
    try:
        with httpx.stream(
            "GET",
            url,
            headers=headers,
            follow_redirects=True,
            timeout=httpx.Timeout(60, connect=15),
        ) as response:
            if response.status_code == 416 and size is not None and have == size:
                return have, hasher  # already complete: the range starts at the end
            if response.status_code == 200 and have:
                have, hasher = 0, hashlib.sha256()  # the server ignored the range: start over
                part.unlink(missing_ok=True)
            elif response.status_code not in (200, 206):
                raise InstallError(f"The model hub answered {response.status_code} for {url}.")
            with part.open("ab") as out:
                for block in response.iter_bytes():  # as they arrive: a cut loses nothing
                    out.write(block)
                    hasher.update(block)
                    have += len(block)
                    if progress:
                        progress(have, size)
    except httpx.HTTPError as exc:
        raise InstallError(
            f"The download stopped at {have:,} bytes ({exc or type(exc).__name__}). Run "
            "'geri install' again: it resumes where it stopped."
        ) from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise InstallError(
                f"The disk is full at {part.parent} after {have:,} bytes. Free some space and "
                "run 'geri install' again: it resumes where it stopped."
            ) from exc
        raise
    return have, hasher


def _hash_existing(path: Path, hasher: Any, progress: Progress | None = None) -> int:
    if not path.exists():
        return 0
    done = 0
    total = path.stat().st_size
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            hasher.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return done


def _verified(target: Path, sha: str) -> bool:
    marker = target.with_name(target.name + ".sha256")
    if not target.exists() or not marker.exists():
        return False
    return marker.read_text().strip() == sha


@contextmanager
def _exclusive(lock: Path, on_wait: Callable[[], None] | None) -> Iterator[None]:
    import fcntl

    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_network_error(exc: Exception) -> bool:
    import httpx

    network: tuple[type[Exception], ...] = (httpx.TransportError, ConnectionError, TimeoutError)
    try:
        import httpx2

        network += (httpx2.TransportError,)
    except ImportError:
        pass
    return isinstance(exc, network)
