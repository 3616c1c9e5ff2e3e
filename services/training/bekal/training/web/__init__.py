"""The training side's staff pages, served by training beside its API (under /staf)."""

from bekal.training.web.attendance import router as attendance_router
from bekal.training.web.corrections import router as corrections_router
from bekal.training.web.graduates import router as graduates_router
from bekal.training.web.programs import router as programs_router
from bekal.training.web.sessions import router as sessions_router

routers = [
    programs_router,
    sessions_router,
    attendance_router,
    corrections_router,
    graduates_router,
]
