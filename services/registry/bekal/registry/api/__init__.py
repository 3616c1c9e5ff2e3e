"""The registry's HTTP routers."""

from bekal.registry.api.audit import router as audit_router
from bekal.registry.api.facilities import router as facilities_router
from bekal.registry.api.imports import router as imports_router
from bekal.registry.api.inmates import router as inmates_router

__all__ = ["audit_router", "facilities_router", "imports_router", "inmates_router"]
