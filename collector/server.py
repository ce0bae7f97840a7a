"""The collector's HTTP server: Tornado's, with slow and idle connections reaped in bulk.

Tornado's `idle_connection_timeout` and `body_timeout` arm a timer (`gen.with_timeout`:
a timer handle, two futures, callbacks) around every request's header and body reads;
on the collect path that was about a tenth of the process's CPU. Instead, this server
notes when each connection began its current request (one attribute store per
request) and a sweep every `sweep_seconds` closes connections whose current request
began more than `timeout` seconds ago. That one rule covers a keep-alive connection
idle for that long, a client trickling its headers or body (slowloris), and anything
else that holds a connection; no handler holds one for long (collect waits at most
`kafka_send_timeout`, health probes 2 s). Worked example, timeout 75 s, sweep 5 s: a
connection whose last request began at t = 100 s is closed by the sweep at the first
tick after t = 175 s, so between 175 and 180 s.
"""

from __future__ import annotations

import typing

import tornado.httpserver
import tornado.httputil
import tornado.ioloop


class ReapingHTTPServer(tornado.httpserver.HTTPServer):
    def initialize(self, *args: typing.Any, reap_after: float = 75.0,
                   sweep_seconds: float = 5.0, **kwargs: typing.Any) -> None:
        super().initialize(*args, **kwargs)
        # Tornado turns "no idle timeout" into 3,600 s and so arms the header timer anyway.
        self.conn_params.header_timeout = None
        self.conn_params.body_timeout = None
        self.reap_after = reap_after
        self._clock = tornado.ioloop.IOLoop.current().time
        self._sweeper = tornado.ioloop.PeriodicCallback(self._sweep_now, sweep_seconds * 1000)
        self._sweeper.start()

    def start_request(self, server_conn: object,
                      request_conn: tornado.httputil.HTTPConnection
                      ) -> tornado.httputil.HTTPMessageDelegate:
        server_conn.tt_began = self._clock()  # type: ignore[attr-defined]
        return super().start_request(server_conn, request_conn)

    def _sweep_now(self) -> None:
        self.sweep()

    def sweep(self) -> int:
        """Close every connection whose current request began too long ago; how many."""
        limit = self._clock() - self.reap_after
        stale = [c for c in self._connections if getattr(c, "tt_began", limit) < limit]
        for conn in stale:
            conn.stream.close()
        return len(stale)

    def stop(self) -> None:
        self._sweeper.stop()
        super().stop()
