"""The gated test daemon of `test_daemon.py`, shared with the other daemon test modules."""

from tests.daemon.test_daemon import daemon, reset_gate

__all__ = ["daemon", "reset_gate"]
