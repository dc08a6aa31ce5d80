"""FastAPI for care-station staff and families."""
