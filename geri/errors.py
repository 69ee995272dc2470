"""Every error geri raises on purpose, in one tree.

Errors are mapped once, where they enter geri (a file, a provider, the store), and from then on
code acts on the *type*: retry and fallback look for `Retryable`, the CLI prints any `GeriError`
as a one-line message and exits non-zero without a traceback. Each message names the fix.

    GeriError
    ├── ConfigError              the settings file is unreadable or invalid
    ├── InputError               a prompt, option or file given by the user is unusable
    ├── ModelError
    │   ├── ModelNotFound        no model with that id, or no model at all
    │   │   └── NoEligibleModel  every model was excluded by the request's constraints
    │   ├── ModelFileError       missing, truncated or non-GGUF model file
    │   └── ModelLoadError       the runtime refused a file that looked valid
    ├── ProviderError            a model call failed
    │   ├── AuthError            the key was refused
    │   ├── BadRequest           the backend rejected the request as malformed
    │   ├── ContextTooLong       prompt + reserved output exceed the context window
    │   │   └── QuestionTooLong  the system prompt and question alone do not fit
    │   ├── IncompleteAnswer     failed after part of the answer was streamed: not retried
    │   ├── SchemaMismatch       the answer is not JSON valid against the requested schema
    │   └── Retryable            worth another attempt, maybe on another model
    │       ├── RateLimited      429, with the server's Retry-After when it sent one
    │       │   └── QueueFull    the daemon's queue is full
    │       ├── Unavailable      5xx, overloaded, connection refused or lost
    │       │   └── MalformedReply  a reply of a shape geri cannot read
    │       └── ProviderTimeout  no answer, or no stream activity, in time
    ├── BudgetExhausted          a cloud call would take spending past a budget limit
    ├── KeyProblem
    │   ├── MissingKey           a provider needs a key and none is set
    │   └── KeyringUnavailable   no usable OS keyring backend
    ├── StoreError               the database could not be opened or written
    ├── InstallError             a model could not be downloaded or registered
    └── DaemonError              a daemon answered with a status geri does not map
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from geri.redaction import redact

if TYPE_CHECKING:
    from geri.types import Period


class GeriError(Exception):
    """Base of all errors meant for the user. `str(err)` is the complete message.

    The message is redacted as the error is made (`geri.redaction`): an error may quote an
    upstream, and it is shown, logged, stored and sent over gRPC from here on.
    """

    exit_code = 1

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))


class ConfigError(GeriError):
    """The settings file cannot be read or does not match the schema."""


class InputError(GeriError):
    """Something the user passed in (prompt, option, file) cannot be used."""

    exit_code = 2


class OutputError(GeriError):
    """What geri must write (an answer on stdout) cannot be written: a full disk, a closed
    stream."""


class ModelError(GeriError):
    """A model cannot be found, checked or loaded."""


class ModelNotFound(ModelError):
    """No model matches the requested id, or none is configured."""


class NoEligibleModel(ModelNotFound):
    """Every model was excluded by a constraint."""


class ModelFileError(ModelError):
    """A model file is missing, truncated, or not a GGUF file."""


class ModelLoadError(ModelError):
    """The inference runtime failed to load a file that passed our checks."""


class ProviderError(GeriError):
    """A call to a model (local or remote) failed."""


class AuthError(ProviderError):
    """The provider refused the key (401/403)."""


class BadRequest(ProviderError):
    """The provider rejected the request itself (400, 404, 422)."""


class ContextTooLong(ProviderError):
    """The prompt plus the reserved response does not fit the model's context window."""


class QuestionTooLong(ContextTooLong):
    """The system prompt and question alone exceed the window, before any document.

    `needed` is how many tokens the window would have to hold for them.
    """

    def __init__(self, message: str, needed: int) -> None:
        super().__init__(message)
        self.needed = needed


class SchemaMismatch(ProviderError):
    """Structured output was asked for, and the answer does not follow the schema."""


class IncompleteAnswer(ProviderError):
    """The call failed after part of the answer had been streamed.

    It is never retried: a second attempt would repeat text the user has already seen.
    `partial` is what arrived before the failure.
    """

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = redact(partial)


class Retryable(ProviderError):
    """A failure that another attempt, or another model, may not hit.

    `retry_after` is the server's own wait hint in seconds, when it gave one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(Retryable):
    """The provider is throttling us (429)."""


class QueueFull(RateLimited):
    """The daemon's queue is full; `waiting` requests are ahead."""

    def __init__(self, waiting: int) -> None:
        super().__init__(f"The daemon's queue is full ({waiting} requests waiting); retry later.")
        self.waiting = waiting


class Unavailable(Retryable):
    """The backend is down, overloaded or unreachable."""


class MalformedReply(Unavailable):
    """A reply geri cannot read: the parsers say what was missing, and the HTTP boundary
    (`HttpProvider._read`) quotes the reply, its keys redacted before it is cut."""


class ProviderTimeout(Retryable):
    """The backend did not answer, or went quiet mid-stream, for too long."""


class BudgetExhausted(GeriError):
    """Reserving the projected cost of a call would take spending past a budget limit.

    `scope` is '*' (all cloud spending) or a provider name; `period` is daily, weekly or
    monthly; `resets_at` is when the period starts over. Fallback acts on this type.
    """

    def __init__(self, message: str, *, scope: str, period: Period, resets_at: datetime) -> None:
        super().__init__(message)
        self.scope = scope
        self.period = period
        self.resets_at = resets_at


class KeyProblem(GeriError):
    """An API key cannot be found or stored."""


class MissingKey(KeyProblem):
    """A provider needs a key and none is configured."""


class KeyringUnavailable(KeyProblem):
    """No usable OS keyring backend, or only one geri refuses to use."""


class StoreError(GeriError):
    """The store (request log, registry) cannot be opened or written."""


class InstallError(GeriError):
    """A model could not be installed; the message says why and what to do."""


class DaemonError(GeriError):
    """A daemon answered with an error status outside geri's table; the message is its own."""
