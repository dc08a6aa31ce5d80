"""The monthly report (issue 15): per district and community, PDF and CSV with plots."""
