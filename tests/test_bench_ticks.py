"""The tick benchmark measures what it says: at 02:05 every kind of resident is up in the
kitchen and watched as ``night``; at 10:05 about the home by day; and it prints its figures."""

from __future__ import annotations

import sys

import pytest

from alerts.detection.detectors.inactivity import InactivityDetector
from bench import ticks


@pytest.mark.parametrize(("at", "state"), [("02:05", "night"), ("10:05", "active")])
def test_the_benchmark_takes_the_path_it_names(at: str, state: str) -> None:
    now = ticks.at_local(at)
    snaps = ticks.snapshots(len(ticks.KINDS), ticks.fitted(now), now)
    assert {(s.has_bed_mat, s.has_seat_sensor) for s in snaps} == set(ticks.KINDS)
    deadlines = [InactivityDetector().deadline(s) for s in snaps]
    assert all(d is not None and d.state == state for d in deadlines)


def test_the_benchmark_prints_its_figures(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["bench.ticks", "--residents", "8", "--repeats", "1"])
    ticks.main()
    out = capsys.readouterr().out
    assert "at 02:05 local" in out
    assert "resident-ticks/s" in out
    assert "ratio judged / built" in out
