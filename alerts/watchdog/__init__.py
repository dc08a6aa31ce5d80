"""The dead-man's switch: watchers (every alerts worker and every API process) read the
workers' heartbeats and the queues' ages and raise technical alerts when something stops."""
