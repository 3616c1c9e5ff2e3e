"""The corrections side's staff pages, served by the registry beside its API (under /staf)."""

from bekal.registry.web.audit import router as audit_router
from bekal.registry.web.facilities import router as facilities_router
from bekal.registry.web.imports import router as imports_router
from bekal.registry.web.inmates import router as inmates_router
from bekal.registry.web.records import router as records_router

routers = [inmates_router, records_router, facilities_router, imports_router, audit_router]
