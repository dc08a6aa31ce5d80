"""Where the shared research data lives: ``shared/data`` beside the project's root (how the
project is checked out next to its ``shared/`` folder), read in place, never copied in.

``ELDERCARE_SHARED_DATA`` points elsewhere (a git worktree that is not beside ``shared/``)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(
    os.environ.get("ELDERCARE_SHARED_DATA") or PROJECT_ROOT.parent / "shared" / "data"
)
