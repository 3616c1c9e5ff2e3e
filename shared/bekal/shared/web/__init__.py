"""The staff pages every service serves beside its API: one layout, stylesheet, components,
sign-in (OpenID Connect, code flow with PKCE), page session, CSRF and security headers.

A service lists its page routers in ``ServiceSpec.pages``; each is made with ``page_router()``
and renders through a ``Pages`` of its own templates, which extend this package's layout.
"""

from bekal.shared.web.forms import FormErrors
from bekal.shared.web.pages import (
    STAFF,
    NavItem,
    PagePrincipal,
    Pages,
    flash,
    page_require,
    page_router,
)

__all__ = [
    "STAFF",
    "FormErrors",
    "NavItem",
    "PagePrincipal",
    "Pages",
    "flash",
    "page_require",
    "page_router",
]
