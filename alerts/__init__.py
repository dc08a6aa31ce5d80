"""Detectors over the live stream, alerts, and the 96345-style dispatch queue."""
