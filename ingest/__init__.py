"""MQTT ingestion into TimescaleDB: at-least-once, idempotent, bad payloads dead-lettered."""
