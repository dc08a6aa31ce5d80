"""NOTIFY devices_changed on every change to the device registry, so ingest reloads its
device cache at once (a retired or moved device is refused from its next message on).

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-03
"""

from alembic import op

revision = "0013"
down_revision = "0010"


def upgrade() -> None:
    # Statement level: one notification per statement, however many rows (PostgreSQL also
    # folds identical notifications of one transaction into one), sent at commit.
    op.execute(
        """
        CREATE FUNCTION notify_devices_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('devices_changed', TG_OP);
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER devices_changed AFTER INSERT OR UPDATE OR DELETE ON devices"
        " FOR EACH STATEMENT EXECUTE FUNCTION notify_devices_changed()"
    )
    op.execute(
        "CREATE TRIGGER devices_truncated AFTER TRUNCATE ON devices"
        " FOR EACH STATEMENT EXECUTE FUNCTION notify_devices_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS devices_truncated ON devices")
    op.execute("DROP TRIGGER IF EXISTS devices_changed ON devices")
    op.execute("DROP FUNCTION IF EXISTS notify_devices_changed()")
