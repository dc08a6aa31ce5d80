"""Detection: where a stored stream event or a quiet spell becomes an alert.

The worker (``worker``) claims events from the outbox and runs the pure detectors
(``detectors/``, ``fall/``); the timers (``ticks``, ``periodic``, ``checks``) judge silence,
device health and deferred checks. Every verdict leaves through one seam, ``persist``:
an alert stored, folded into its incident, and an order opened in ``alerts.dispatch``.
"""
