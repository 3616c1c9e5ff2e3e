"""HTTP routers of the training service, in the order the app serves them."""

from bekal.training.api.graduates import router as graduates_router
from bekal.training.api.programs import router as programs_router
from bekal.training.api.replica import router as replica_router
from bekal.training.api.sessions import router as sessions_router

routers = [replica_router, programs_router, sessions_router, graduates_router]

__all__ = ["routers"]
