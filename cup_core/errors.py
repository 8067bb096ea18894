"""Errors in one line: what the library and the app say when something fails."""

from __future__ import annotations


def first_line(err: BaseException) -> str:
    """An error's message on one line: some run over several (torch's stack of C++ frames, a browser's report)."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else ""
