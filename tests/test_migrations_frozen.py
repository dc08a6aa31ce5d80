"""An applied migration keeps doing what it did: the SQL each one runs, up and down, is pinned
by its hash. A change to the shared helpers (``devices/migrations/steps.py``) or to a migration
that has shipped would make a fresh schema differ from an upgraded one; this fails first.

A new migration adds its line here (the failure prints it)."""

from __future__ import annotations

import hashlib

import pytest

from tests.migration_sql import modules, ran

APPLIED: dict[str, tuple[str, str]] = {
    "0001_foundation": ("036a080fcc4e6532", "b2d90cb7a32f1fd7"),
    "0002_dispatch_queue": ("8e3b8e7e4982a9d7", "9d4294356a443389"),
    "0003_notifications": ("62c1e40de3fd4962", "3a176b9a1179c247"),
    "0005_resident_routines": ("e080d513ef80800d", "bbb47b0f3ab7d12f"),
    "0006_simulated_clock": ("5a9251092aa67b81", "4df9198eb24f3d6d"),
    "0008_detector_checks": ("9fd20b1f0e11618c", "f22887375e7f60d8"),
    "0009_dropped_messages": ("d6c6c4977f775baa", "0bd3932d8e75d0e7"),
    "0010_watchdog": ("47a5d9967fae38a3", "c90caa2c03e7078f"),
    "0011_login_throttle": ("6491e7556658c827", "114746007ee7e442"),
    "0012_device_placement": ("4fd5d8f6ee48c766", "fc149bbb82fec402"),
    "0013_devices_notify": ("c0cedd877ec70442", "e99e418e3f4a7667"),
    "0015_user_locale": ("94690de15c64502f", "063474629589327c"),
    "0016_notify_channels": ("a56ceb84c4256977", "8d9a19f97ca1c58a"),
    "0018_care_programme": ("c9e2c20b2ccac874", "7fac971cf6dd167e"),
    "0020_fall_checks": ("ecd65755b06b987a", "b76b1529965e8c0e"),
    "0021_live_tickets": ("bd808b590d118652", "8801f0fa2af59a84"),
    "0022_operator": ("efc1486684b0bbc1", "5045aef9a4d09bb7"),
    "0023_process_roles": ("67650610eb1251f4", "34128d40d92a34bd"),
    "0024_check_ins": ("9a267420faaf8c66", "dca9a7904728af48"),
    "0025_fall_examples": ("471459a7c93b81f8", "6f32d2e92d637cbe"),
    "0026_round_times": ("50b4b1c0299b5564", "337acff7128a55a4"),
    "0027_phone_check_ins": ("38c951f3cb40fccf", "fd211ac9d7da4abc"),
    "0028_watch_texts": ("26ddf8168a871140", "d3808f752773daaa"),
    "0029_unmatched_replies": ("466ea3c2c147cf83", "107044252d2c4e48"),
    "0030_api_reads_routines": ("8545582c79a8e1ce", "b0c36750a7294e33"),
}


def _sql_hash(module: str, step: str) -> str:
    statements = ran(module, step)
    assert statements, f"{module}.{step} ran no SQL"
    return hashlib.sha256("\n;\n".join(statements).encode()).hexdigest()[:16]


def test_every_migration_is_pinned() -> None:
    assert modules() == sorted(APPLIED)


@pytest.mark.parametrize("module", modules())
def test_an_applied_migration_runs_the_sql_it_ran(module: str) -> None:
    got = (_sql_hash(module, "upgrade"), _sql_hash(module, "downgrade"))
    assert got == APPLIED.get(module), f'new or changed: "{module}": {got!r},'
