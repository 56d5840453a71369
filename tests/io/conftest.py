"""Shared helpers for the pacup.io tests (all data is generated; nothing is read from disk)."""

import pytest

from pacup.io import PacupIOError


@pytest.fixture
def assert_one_line_error():
    """Check that an IO error names the file and fits on one line (what the CLI prints)."""

    def check(exc_info, path, *fragments):
        exc = exc_info.value
        assert isinstance(exc, PacupIOError)
        message = str(exc)
        assert "\n" not in message
        assert str(path) in message
        for fragment in fragments:
            assert fragment.lower() in message.lower(), message
        return message

    return check
