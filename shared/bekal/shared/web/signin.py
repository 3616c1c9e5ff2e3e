"""Signing in and out of the staff pages.

The ministry's OpenID provider (authorization code flow with PKCE, through authlib): its access
token is checked exactly as the API checks a bearer token, and the principal it gives is what
the page session holds. In development a page offers the preset users of `bekal token
--preset`; it answers 404 when ENVIRONMENT=production.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import urlencode

from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth
from fastapi import Form, Request, Response
from fastapi.responses import RedirectResponse

from bekal.shared.auth import Ministry, Principal, TokenVerifier
from bekal.shared.problems import NotFound, Problem
from bekal.shared.settings import Environment, Settings
from bekal.shared.web.pages import STAFF, Pages, page_router, session_principal, start_session

_pages = Pages()
router = page_router()
# Signing in as a preset user: included only outside production (install_pages).
dev_router = page_router()


def oauth_client(settings: Settings) -> Any:
    """The provider's client, or None when no provider is named (development only)."""
    if not settings.web_oidc_issuer:
        return None
    oauth = OAuth()
    client_kwargs: dict[str, str] = {"scope": "openid profile", "code_challenge_method": "S256"}
    if not settings.web_oidc_client_secret:
        client_kwargs["token_endpoint_auth_method"] = "none"
    return oauth.register(
        name="staff",
        client_id=settings.web_oidc_client_id,
        client_secret=settings.web_oidc_client_secret,
        server_metadata_url=(
            settings.web_oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
        ),
        client_kwargs=client_kwargs,
    )


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _base(request: Request) -> str:
    return (_settings(request).web_base_url or str(request.base_url)).rstrip("/")


def _safe_next(target: str | None) -> str:
    """Only a page of this service: never an address elsewhere (an open redirect)."""
    if target and target.startswith(STAFF + "/") and not target.startswith("//"):
        return target
    return STAFF


def dev_presets() -> dict[str, tuple[str, list[str]]]:
    from bekal.shared.cli import ROLE_PRESETS

    return ROLE_PRESETS


def _dev_allowed(request: Request) -> bool:
    return _settings(request).environment is not Environment.PRODUCTION


def _sign_in_page(
    request: Request, *, status_code: int = 200, error: str | None = None, **context: Any
) -> Response:
    return _pages.render(
        request,
        "masuk.html",
        status_code=status_code,
        title="Masuk",
        next=_safe_next(request.query_params.get("next")),
        provider=request.app.state.web_oauth is not None,
        presets=dev_presets() if _dev_allowed(request) else {},
        error=error,
        values=context.pop("values", {}),
        **context,
    )


@router.get("/masuk")
async def sign_in(request: Request) -> Response:
    if session_principal(request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return _sign_in_page(request)


@router.get("/masuk/oidc")
async def sign_in_at_provider(request: Request) -> Response:
    client = request.app.state.web_oauth
    if client is None:
        raise NotFound("Penyedia identitas belum diatur untuk layanan ini.")
    request.session["next"] = _safe_next(request.query_params.get("next"))
    try:
        redirect: Response = await client.authorize_redirect(
            request, redirect_uri=f"{_base(request)}{STAFF}/masuk/kembali"
        )
    except Exception as exc:  # the provider's discovery document is out of reach
        return _sign_in_page(
            request,
            status_code=503,
            error=f"Penyedia identitas tidak dapat dihubungi ({type(exc).__name__}). "
            "Coba lagi sebentar lagi.",
        )
    return redirect


@router.get("/masuk/kembali")
async def signed_in_at_provider(request: Request) -> Response:
    client = request.app.state.web_oauth
    if client is None:
        raise NotFound("Penyedia identitas belum diatur untuk layanan ini.")
    next_page = _safe_next(request.session.get("next"))
    try:
        token = await client.authorize_access_token(request)
        verifier: TokenVerifier = request.app.state.token_verifier
        # The API's own check of a bearer token: same issuer, audience, claims and rules.
        principal = await asyncio.to_thread(verifier.verify, token["access_token"])
    except (OAuthError, Problem, KeyError) as exc:
        detail = getattr(exc, "description", None) or getattr(exc, "detail", None) or str(exc)
        return _sign_in_page(request, status_code=400, error=f"Gagal masuk: {detail}")
    userinfo = token.get("userinfo") or {}
    start_session(
        request,
        Principal(
            subject=principal.subject,
            ministry=principal.ministry,
            roles=principal.roles,
            facilities=principal.facilities,
            claims={"name": userinfo.get("name") or userinfo.get("preferred_username")},
        ),
        via="oidc",
        id_token=token.get("id_token"),
    )
    return RedirectResponse(next_page, status_code=303)


@dev_router.post("/masuk/pengembang")
async def sign_in_as_preset(
    request: Request,
    preset: Annotated[str, Form()] = "",
    facility: Annotated[str, Form(max_length=50)] = "",
    next_page: Annotated[str, Form(alias="next")] = "",
) -> Response:
    presets = dev_presets()
    if preset not in presets:
        return _sign_in_page(
            request,
            status_code=422,
            error="Pilih salah satu pengguna contoh.",
            values={"facility": facility},
        )
    ministry, roles = presets[preset]
    facilities = [code.strip() for code in facility.split(",") if code.strip()]
    start_session(
        request,
        Principal(
            subject=f"dev-{preset}",
            ministry=Ministry(ministry),
            roles=frozenset(roles),
            facilities=frozenset(facilities),
            claims={"name": f"{preset} (pengembangan)"},
        ),
        via="dev",
    )
    return RedirectResponse(_safe_next(next_page), status_code=303)


@router.post("/keluar")
async def sign_out(request: Request) -> Response:
    data = request.session.get("principal") or {}
    request.session.clear()
    client = request.app.state.web_oauth
    back = f"{_base(request)}{STAFF}/masuk"
    if client is not None and data.get("via") == "oidc":
        # Ends the provider's session too, or its next sign-in would need no password.
        metadata = await client.load_server_metadata()
        end_session = metadata.get("end_session_endpoint")
        if end_session:
            url = _with_query(
                end_session,
                client_id=_settings(request).web_oidc_client_id,
                post_logout_redirect_uri=back,
                id_token_hint=data.get("id_token"),
            )
            return RedirectResponse(url, status_code=303)
    return RedirectResponse(back, status_code=303)


def _with_query(url: str, **params: str | None) -> str:
    present = {k: v for k, v in params.items() if v}
    return f"{url}{'&' if '?' in url else '?'}{urlencode(present)}"
