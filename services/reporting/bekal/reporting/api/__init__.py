"""HTTP routers of the reporting service."""

from bekal.reporting.api.indicators import router as indicators_router

routers = [indicators_router]

__all__ = ["routers"]
