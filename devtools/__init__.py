"""Dev tooling, outside the runtime layers: the project's own PostgreSQL+TimescaleDB and
Mosquitto for the main job, the tests and the benchmarks (``local_services``, on ``servers``),
and the demo population (``seed``, ``care_seed``). ``python -m devtools``; the runtime
packages never import it (import-linter) and the image does not ship it."""
