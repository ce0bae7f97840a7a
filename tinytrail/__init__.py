"""TinyTrail's shared core: settings, wire model, database pool, envelope, topics.

Code that two or more processes (collector, worker, API) share lives here; each
process lives in its own top-level package (`collector`, `streams`, `api`).
"""

__version__ = "0.1.0"
