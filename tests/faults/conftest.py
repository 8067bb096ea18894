"""The fault-injection suite prints one summary line per fault kind: trials, survived, points lost."""

from __future__ import annotations

SUMMARY: list[tuple[str, int, int, int]] = []


def record(kind: str, trials: int, survived: int, points_lost: int) -> None:
    SUMMARY.append((kind, trials, survived, points_lost))


def pytest_terminal_summary(terminalreporter) -> None:
    if SUMMARY:
        terminalreporter.section("fault injection")
        for kind, trials, survived, lost in SUMMARY:
            terminalreporter.write_line(f"{kind}: {trials} trials, {survived} survived, {lost} points lost")
