"""The care programme around the alarms (issue 15): visit planning and device findings."""
