"""Every error geri raises on purpose, in one tree.

Errors are mapped once, where they enter geri (a file, a provider, the store), and from then on
code acts on the *type*: retry and fallback look for `Retryable`, the CLI prints any `GeriError`
as a one-line message and exits non-zero without a traceback. Each message names the fix.

    GeriError
    ├── ConfigError              the settings file is unreadable or invalid
    ├── InputError               a prompt, option or file given by the user is unusable
    ├── ModelError
    │   ├── ModelNotFound        no model with that id, or no model at all
    │   ├── ModelFileError       missing, truncated or non-GGUF model file
    │   └── ModelLoadError       the runtime refused a file that looked valid
    ├── ProviderError            a model call failed
    │   ├── ContextTooLong       prompt + reserved output exceed the context window
    │   └── Retryable            worth another attempt, maybe on another model
    │       └── Unavailable      the backend is down or unreachable
    └── StoreError               the database could not be opened or written
"""

from __future__ import annotations


class GeriError(Exception):
    """Base of all errors meant for the user. `str(err)` is the complete message."""

    exit_code = 1


class ConfigError(GeriError):
    """The settings file cannot be read or does not match the schema."""


class InputError(GeriError):
    """Something the user passed in (prompt, option, file) cannot be used."""

    exit_code = 2


class ModelError(GeriError):
    """A model cannot be found, checked or loaded."""


class ModelNotFound(ModelError):
    """No model matches the requested id, or none is configured."""


class ModelFileError(ModelError):
    """A model file is missing, truncated, or not a GGUF file."""


class ModelLoadError(ModelError):
    """The inference runtime failed to load a file that passed our checks."""


class ProviderError(GeriError):
    """A call to a model (local or remote) failed."""


class ContextTooLong(ProviderError):
    """The prompt plus the reserved response does not fit the model's context window."""


class Retryable(ProviderError):
    """A failure that another attempt, or another model, may not hit."""


class Unavailable(Retryable):
    """The backend is down, overloaded or unreachable."""


class StoreError(GeriError):
    """The store (request log, registry) cannot be opened or written."""
