"""One HTTP client for the tests' plain requests.

httpx's module functions (``httpx.get``, ``httpx.post``, ...) build a client, and with it an SSL
context (the CA bundle parsed again), for every request: two thirds of a test worker's CPU
while the role matrix ran. Connections are not kept alive: the servers behind them come and go
between tests on reused ports.
"""

from __future__ import annotations

import httpx2

HTTP = httpx2.Client(limits=httpx2.Limits(max_keepalive_connections=0))
