"""`python -m app`: one uvicorn process (uvloop, httptools) serving the app."""

from __future__ import annotations

import logging

import uvicorn

from app.config import Settings
from app.main import create_app
from app.observability import logging as app_logging


def main() -> None:
    settings = Settings.from_env()
    app_logging.configure(settings.log_level)
    logging.getLogger("app").info("starting", extra={"settings": settings.public_dict()})
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=settings.access_log,
        log_config=None,
        server_header=False,
    )


if __name__ == "__main__":
    main()
