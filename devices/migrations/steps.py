"""What the migrations share: the upgrade and downgrade of a migration that is one SQL script
each way, and the grants of a new table to the processes' database roles (created in 0023).

A migration that has been applied must keep doing what it did: these helpers only run the
SQL they are given (``op.execute``), and their text is what the migrations wrote out before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from alembic import op

Step = Callable[[], None]


def plain(upgrade_sql: str, downgrade_sql: str) -> tuple[Step, Step]:
    """``upgrade, downgrade = plain(UPGRADE, DOWNGRADE)``: each runs its one script."""

    def upgrade() -> None:
        op.execute(upgrade_sql)

    def downgrade() -> None:
        op.execute(downgrade_sql)

    return upgrade, downgrade


def for_role(role: str, body: str, declare: str = "") -> str:
    """Run ``body`` only if ``role`` exists (an owner that may not create roles has none)."""
    return (
        f"DO $$ {declare} BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN\n"
        f"{body}\nEND IF; END $$"
    )


def role_grants(role: str, tables: Mapping[str, str]) -> str:
    """``GRANT <what> ON <table>`` for each table, and the sequences behind the ids of the
    tables it inserts into."""
    lines = [f"GRANT {what} ON {table} TO {role};" for table, what in tables.items()]
    inserted = ", ".join(f"'{t}'" for t, what in tables.items() if "INSERT" in what)
    lines.append(
        "FOR seq IN SELECT s.oid::regclass::text FROM pg_class s JOIN pg_depend d"
        " ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype IN ('a', 'i')"
        f" WHERE s.relkind = 'S' AND d.refobjid = ANY (ARRAY[{inserted}]::regclass[]) LOOP"
        f" EXECUTE format('GRANT USAGE ON SEQUENCE %s TO {role}', seq); END LOOP;"
    )
    return "\n".join(lines)


def grant(grants: Mapping[str, Mapping[str, str]]) -> None:
    """Give each existing role (``{role: {table: privileges}}``) its privileges."""
    for role, tables in grants.items():
        op.execute(for_role(role, role_grants(role, tables), declare="DECLARE seq text;"))


def indexed_table(
    table: str, columns: Mapping[str, str], *, index: str, on: str
) -> tuple[Step, Step]:
    """``upgrade, downgrade`` of one new table (``{column: type and constraints}``) with one
    index on the column ``on``; the downgrade drops the table."""
    width = max(map(len, columns))
    body = ",\n".join(f"    {name.ljust(width)}  {spec}" for name, spec in columns.items())
    return plain(
        f"\nCREATE TABLE {table} (\n{body}\n);\nCREATE INDEX {index} ON {table} ({on});\n",
        f"DROP TABLE {table}",
    )


def granted(grants: Mapping[str, Mapping[str, str]]) -> tuple[Step, Step]:
    """``upgrade, downgrade`` of a migration that only grants (``{role: {table: privileges}}``):
    the downgrade revokes the same privileges, from each role that exists."""

    def upgrade() -> None:
        grant(grants)

    def downgrade() -> None:
        for role, tables in grants.items():
            revokes = [f"REVOKE {what} ON {table} FROM {role};" for table, what in tables.items()]
            op.execute(for_role(role, "\n".join(revokes)))

    return upgrade, downgrade
