"""The certification staff pages, served by certification beside its API (under /staf)."""

from bekal.certification.web.certificates import router as certificates_router

routers = [certificates_router]
