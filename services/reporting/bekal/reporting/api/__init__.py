"""HTTP routers of the reporting service, in the order the app serves them."""

from bekal.reporting.api.admin import router as admin_router
from bekal.reporting.api.dashboard import router as dashboard_router
from bekal.reporting.api.indicators import router as indicators_router
from bekal.reporting.api.public import router as public_router
from bekal.reporting.api.targets import router as targets_router

routers = [indicators_router, targets_router, public_router, dashboard_router, admin_router]

__all__ = ["routers"]
