-- Session state moved to the worker's Faust table `sessions` (streams/session_state.py).
-- Postgres stays the source of truth through the events table: every stored event
-- carries its session_id, so a session is rebuilt by folding its events (the table
-- reloads a partition that way when its changelog is behind Postgres' offsets).
DROP TABLE IF EXISTS sessions;
