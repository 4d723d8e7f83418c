"""The HTTP service (ASGI): see ``dispatcher.service.app``."""

from dispatcher.service.app import ServiceConfig, create_app

__all__ = ["ServiceConfig", "create_app"]
