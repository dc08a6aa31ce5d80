"""Where the shared research data lives: ``shared/data`` beside the project's root (how the
project is checked out next to its ``shared/`` folder), read in place, never copied in."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
