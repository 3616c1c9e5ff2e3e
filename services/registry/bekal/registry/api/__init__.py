"""The registry's HTTP routers, in the order the app serves them."""

from bekal.registry.api.audit import router as audit_router
from bekal.registry.api.facilities import router as facilities_router
from bekal.registry.api.imports import router as imports_router
from bekal.registry.api.inmates import router as inmates_router

routers = [facilities_router, inmates_router, audit_router, imports_router]

__all__ = ["routers"]
