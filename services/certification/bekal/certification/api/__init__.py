"""HTTP routers: the staff API and the public verification pages, in the order the app serves
them."""

from bekal.certification.api.certificates import participants as participants_router
from bekal.certification.api.certificates import router as certificates_router
from bekal.certification.api.certificates import sessions as sessions_router
from bekal.certification.api.contexts import router as contexts_router
from bekal.certification.api.public import router as public_router

routers = [
    certificates_router,
    sessions_router,
    participants_router,
    public_router,
    contexts_router,
]

__all__ = ["routers"]
