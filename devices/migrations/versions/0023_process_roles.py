"""A database role per long-running process, with only what it needs (issue 16 item 5):
``eldercare_ingest`` stores readings, events, dead letters and device status and reads the
device registry's ids (not its password hashes); ``eldercare_alerts`` and ``eldercare_api``
get the tables their code names (tests/test_db_roles.py derives that from the code and checks
these grants cover it), read-only where they only read. The schema's owner (the migration's
role) keeps everything; the one-shot tools (migrate, broker-sync, provision/retire) use it.

The roles are created without a password (no one can sign in as them): ``devices migrate``
sets the passwords it is given (``ELDERCARE_DATABASE_{INGEST,ALERTS,API}_PASSWORD``). An owner
that may not create roles (a managed database) gets a warning, and the grants are skipped for
the roles that do not exist; an administrator may create them and run the migration again
(downgrade to 0021, upgrade). Roles belong to the whole cluster, so a downgrade revokes this
database's grants but keeps them. A new table in a later migration is nobody's until that
migration grants it.

Retention under the Apache edition runs in ingest as ``drop_chunks``, which only a table's
owner may call: ``eldercare_drop_old_chunks(horizon)`` does it as the owner (security
definer), and only ingest may execute it.

Revision ID: 0023
Revises: 0025
Create Date: 2026-12-03
"""

from alembic import op

from devices.migrations.steps import for_role, grant

revision = "0023"
down_revision = "0025"

ALL = "SELECT, INSERT, UPDATE, DELETE"
READ = "SELECT"

GRANTS: dict[str, dict[str, str]] = {
    "eldercare_ingest": {
        "telemetry": "SELECT, INSERT",
        "events": "SELECT, INSERT",
        "acc_windows": "SELECT, INSERT",
        "stream_outbox": "INSERT",
        "dead_letters": "SELECT, INSERT, UPDATE",
        "device_status": "SELECT, INSERT, UPDATE",
        "worker_heartbeats": "SELECT, INSERT, UPDATE",
        "devices": "SELECT (device_key, device_id, site_id, kind, retired_at)",
    },
    "eldercare_alerts": {
        **dict.fromkeys(
            [
                "acc_windows",
                "care_flags",
                "device_status",
                "events",
                "family_links",
                "notification_prefs",
                "responders",
                "shifts",
                "telemetry",
                "users",
                "visit_assignments",
                "visits",
            ],
            READ,
        ),
        **dict.fromkeys(
            [
                "alerts",
                "detector_checks",
                "detector_state",
                "device_assignments",
                "device_commands",
                "devices",
                "dispatch_orders",
                "escalation_policies",
                "fall_examples",
                "incidents",
                "notification_attempts",
                "notification_outbox",
                "order_offers",
                "order_steps",
                "order_transitions",
                "quarantine",
                "resident_routines",
                "residents",
                "responder_notifications",
                "rooms",
                "safety_findings",
                "simulated_clock",
                "sites",
                "stream_outbox",
                "technical_alerts",
                "worker_heartbeats",
            ],
            ALL,
        ),
    },
    "eldercare_api": {
        **dict.fromkeys(
            [
                "acc_windows",
                "alerts",
                "care_visitors",
                "device_status",
                "events",
                "incidents",
                "notification_attempts",
                "order_offers",
                "responders",
                "stream_outbox",
                "telemetry",
            ],
            READ,
        ),
        **dict.fromkeys(
            [
                "api_tokens",
                "care_flags",
                "device_assignments",
                "device_commands",
                "devices",
                "dispatch_orders",
                "escalation_policies",
                "fall_examples",
                "family_links",
                "live_tickets",
                "login_failures",
                "notification_outbox",
                "notification_prefs",
                "order_transitions",
                "quarantine",
                "report_runs",
                "residents",
                "rooms",
                "safety_checklist_items",
                "safety_findings",
                "safety_rounds",
                "simulated_clock",
                "sites",
                "technical_alerts",
                "user_sites",
                "users",
                "visit_assignments",
                "visits",
                "worker_heartbeats",
            ],
            ALL,
        ),
    },
}
ROLES = tuple(GRANTS)


def upgrade() -> None:
    op.execute(
        """
        DO $$
        DECLARE
          r text;
          may_create boolean := (SELECT rolsuper OR rolcreaterole FROM pg_roles
                                 WHERE rolname = current_user);
        BEGIN
          FOREACH r IN ARRAY ARRAY['eldercare_ingest', 'eldercare_alerts', 'eldercare_api'] LOOP
            CONTINUE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = r);
            IF may_create THEN
              BEGIN
                EXECUTE format('CREATE ROLE %I LOGIN', r);
              EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a migration of another database of the cluster
              END;
            ELSE
              RAISE WARNING 'role % does not exist and % may not create it: its grants are '
                'skipped (docs/deployment.md)', r, current_user;
            END IF;
          END LOOP;
        END $$
        """
    )
    grant(GRANTS)
    op.execute(
        """
        CREATE FUNCTION eldercare_drop_old_chunks(horizon timestamptz) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        DECLARE
          dropped integer := 0;
          n integer;
          t regclass;
        BEGIN
          FOREACH t IN ARRAY ARRAY['telemetry', 'events', 'acc_windows']::regclass[] LOOP
            SELECT count(*) INTO n FROM drop_chunks(t, older_than => horizon);
            dropped := dropped + n;
          END LOOP;
          RETURN dropped;
        END $$;
        REVOKE ALL ON FUNCTION eldercare_drop_old_chunks(timestamptz) FROM PUBLIC;
        """
    )
    op.execute(
        for_role(
            "eldercare_ingest",
            "GRANT EXECUTE ON FUNCTION eldercare_drop_old_chunks(timestamptz) TO eldercare_ingest;",
        )
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS eldercare_drop_old_chunks(timestamptz)")
    for role in ROLES:
        op.execute(
            for_role(
                role,
                f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role};\n"
                f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role};",
            )
        )
