"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from devices.migrations.steps import plain

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}

UPGRADE = """
"""

DOWNGRADE = """
"""


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
