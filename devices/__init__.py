"""Base layer: domain types, the wire format, settings, the database pool, schema and migrations."""
