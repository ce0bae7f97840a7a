"""The `tinytrail` command and the local runner: `main.py` (subcommands, one per process),
`supervisor.py` (`tinytrail run`: restarts with backoff) and `router.py` (the local stand-in
for the Ingress). Outside the shared core: `tinytrail/` never imports a process package,
this package imports them all."""
