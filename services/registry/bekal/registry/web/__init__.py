"""The corrections side's staff pages, served by the registry beside its API (under /staf)."""

from bekal.registry.web.inmates import router as inmates_router

routers = [inmates_router]
