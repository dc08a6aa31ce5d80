"""Family notifications: preferences, an outbox with retries and channel fallback, daily
wellbeing summaries. Meets the rest of the system only through the database."""
