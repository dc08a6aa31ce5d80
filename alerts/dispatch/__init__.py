"""The 96345 queue: orders (``orders``: the state machine), their escalation
(``escalation``, ``policy``), hotline service orders, commands to devices and the
time-to-help figures. Detection enters it only through ``orders.open_order`` and
``orders.queue_command`` (called from ``alerts.detection.persist``)."""
