"""`python -m app`: uvicorn (uvloop, httptools) serving the app, through the bounded protocol
of `app.server`: in this process, or in `RECS_WORKERS` forked ones (`app.workers`)."""

from __future__ import annotations

import logging
import socket
import sys
from types import FrameType

import uvicorn
from fastapi import FastAPI

from app import workers
from app.api.middleware import Lifecycle
from app.config import Settings
from app.main import create_app
from app.observability import logging as app_logging
from app.server import ArrivalAdmission, ConnectionLimits, guarded_protocol


class _Server(uvicorn.Server):
    """uvicorn, with readiness turned off the moment SIGTERM arrives.

    uvicorn then stops accepting connections, lets in-flight requests finish within
    `RECS_SHUTDOWN_GRACE_S`, runs the lifespan's shutdown (clients close) and exits.
    """

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle) -> None:
        super().__init__(config)
        self._lifecycle = lifecycle

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self._lifecycle.draining:
            logging.getLogger("app").info(
                "draining", extra={"signal": sig, "in_flight": self._lifecycle.in_flight}
            )
        self._lifecycle.draining = True
        super().handle_exit(sig, frame)


def main() -> None:
    settings = Settings.from_env()
    app_logging.configure(settings.log_level)
    logging.getLogger("app").info("starting", extra={"settings": settings.public_dict()})
    if settings.workers > 1:
        sys.exit(workers.serve(settings, lambda app, sock: _serve(app, settings, [sock])))
    _serve(create_app(settings), settings)


def _serve(app: FastAPI, settings: Settings, sockets: list[socket.socket] | None = None) -> None:
    """uvicorn on `settings.host:port`, or on `sockets` bound already."""
    limits = ConnectionLimits(
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=guarded_protocol(limits, _arrival_admission(app)),
        lifespan="on",
        # The app writes the one access line (RECS_ACCESS_LOG), without query strings.
        access_log=False,
        log_config=None,
        server_header=False,
        # uvicorn types it int, and hands it to loop.call_later: a float is fine.
        timeout_keep_alive=settings.keep_alive_timeout_s,  # type: ignore[arg-type]
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )
    _Server(config, app.state.lifecycle).run(sockets)


def _arrival_admission(app: FastAPI) -> ArrivalAdmission | None:
    guard = app.state.lifecycle.admission
    if guard is None:
        return None
    return ArrivalAdmission(guard, app.state.metrics.rejected.labels("shed").inc)


if __name__ == "__main__":
    main()
