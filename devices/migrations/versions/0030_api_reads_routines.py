"""The API reads the residents' fitted routines: ``GET /api/residents/{id}/watch`` tells what
the inactivity watch promises a resident, from the same snapshot the tick loop takes.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-08
"""

from devices.migrations.steps import granted

revision = "0030"
down_revision = "0029"

GRANTS = {"eldercare_api": {"resident_routines": "SELECT"}}  # read by tests/test_db_roles.py

upgrade, downgrade = granted(GRANTS)
