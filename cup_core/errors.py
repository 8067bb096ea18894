"""Errors in one line: what the library and the app say when something fails."""

from __future__ import annotations


def first_line(err: BaseException) -> str:
    """An error's message on one line: some run over several (torch's stack of C++ frames), and an error raised
    with several sentences (choreographer's) would print as a tuple of them: its first is the message."""
    several = len(err.args) > 1 and all(isinstance(arg, str) for arg in err.args)
    lines = (err.args[0] if several else str(err)).strip().splitlines()
    return lines[0] if lines else ""
