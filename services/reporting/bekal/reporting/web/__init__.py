"""Reporting's staff page: the dashboard in the shared layout and sign-in (under /staf)."""

from bekal.reporting.web.dashboard import router as dashboard_router

routers = [dashboard_router]
