"""Public, unauthenticated: the signing keys and certificate verification (JSON and a page).

The pages are Jinja2 templates in the package's ``templates/``; they work without JavaScript.
"""

from __future__ import annotations

from functools import cache
from html import escape
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

import bekal.shared.web
from bekal.certification.deps import IssuerDep, SessionDep, VerifyLimiterDep
from bekal.certification.domain import VerificationResult, indonesian_date
from bekal.certification.schemas import CredentialPresented, JSONWebKeySet, VerificationPublic
from bekal.certification.services.keys import did_document, published_keys
from bekal.certification.services.status_list import status_list_credential
from bekal.certification.services.verification import (
    Verification,
    verify,
    verify_credential_document,
)
from bekal.shared.guards import client_address
from bekal.shared.problems import TooManyRequests
from bekal.shared.web.security import content_security_policy

router = APIRouter(tags=["public"])

# A verification page names a person: keep it out of search engines and shared caches.
_PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
}
# The pages themselves: the staff pages' policy (no inline script or style, no framing).
_PAGE_HEADERS = {**_PRIVATE_HEADERS, "Content-Security-Policy": content_security_policy()}
# The shared look of the staff pages, then the verification page's own few rules.
_STYLESHEETS = (
    Path(bekal.shared.web.__file__).parent / "static" / "bekal.css",
    Path(__file__).parents[1] / "static" / "verifikasi.css",
)


@router.get(
    "/.well-known/jwks.json",
    response_model=JSONWebKeySet,
    summary="Every public key that ever signed a certificate (JWKS), newest first",
)
async def jwks(session: SessionDep, issuer: IssuerDep, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    keys = await published_keys(session=session, signer=issuer.signer)
    # ``iss`` on each key: the Open Badges implementation guide's check of key provenance.
    return {"keys": [{**key, "iss": issuer.did} for key in keys]}


@router.get(
    "/.well-known/did.json",
    summary="The issuer's did:web document: every key that ever signed, by key id",
)
# did:web with a path (PUBLIC_BASE_URL behind a path prefix) resolves to <prefix>/did.json.
@router.get("/did.json", include_in_schema=False)
async def did_json(session: SessionDep, issuer: IssuerDep, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    keys = await published_keys(session=session, signer=issuer.signer)
    return did_document(issuer, keys)


@router.get(
    "/status-lists/{status_list}",
    response_class=Response,
    responses={200: {"content": {"application/vc+jwt": {}}}},
    summary="A signed BitstringStatusListCredential (revocation), as vc+jwt",
)
async def status_list(
    status_list: Annotated[int, PathParam(ge=1, le=2**31 - 1, description="The list's number")],
    session: SessionDep,
    issuer: IssuerDep,
) -> Response:
    credential = await status_list_credential(
        session=session, status_list=status_list, issuer=issuer
    )
    # Revocation must show at once: verifiers fetch it fresh.
    return Response(
        credential, media_type="application/vc+jwt", headers={"Cache-Control": "no-cache"}
    )


_LIMITED: dict[str, Any] = {
    "description": "Too many verifications from this client; Retry-After says when to retry",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
}
# The pages answer a burst with a page too, and Retry-After.
_PAGE_LIMITED: dict[str, Any] = {
    "description": "Too many verifications from this client (a page saying when to retry)",
    "content": {"text/html": {}},
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
}

Name = Annotated[
    str | None,
    Query(
        max_length=300,
        description="The holder's name as printed; required when looking up by number",
    ),
]


@router.post(
    "/public/verify",
    response_model=VerificationPublic,
    response_model_exclude_unset=True,
    summary="Verify a credential the holder presents (works after their data was erased too)",
    responses={429: _LIMITED},
)
async def verify_presented(
    body: CredentialPresented,
    request: Request,
    session: SessionDep,
    limiter: VerifyLimiterDep,
    response: Response,
) -> VerificationPublic:
    _limit(limiter, request)
    response.headers.update(_PRIVATE_HEADERS)
    verification = await verify_credential_document(session=session, credential=body.credential)
    return _public(verification)


@router.get(
    "/public/verify/{code:path}",
    response_model=VerificationPublic,
    response_model_exclude_unset=True,
    summary="Verify a certificate by its verification code or its (URL-encoded) number",
    responses={429: _LIMITED},
)
async def verify_json(
    code: str,
    request: Request,
    session: SessionDep,
    limiter: VerifyLimiterDep,
    response: Response,
    name: Name = None,
) -> VerificationPublic:
    _limit(limiter, request)
    response.headers.update(_PRIVATE_HEADERS)
    return _public(await verify(session=session, code=code, name=name))


@router.get(
    "/verify",
    response_class=HTMLResponse,
    summary="The page where an employer types the number and the name printed on the paper",
    responses={429: _PAGE_LIMITED},
)
async def verify_form(
    request: Request,
    session: SessionDep,
    limiter: VerifyLimiterDep,
    nomor: Annotated[str | None, Query(max_length=64)] = None,
    nama: Annotated[str | None, Query(max_length=300)] = None,
) -> HTMLResponse:
    if not (nomor and nomor.strip()):
        return _templates.TemplateResponse(request, "form.html", headers=_PAGE_HEADERS)
    retry_after = limiter.hit(_client(request))
    if retry_after is not None:
        return _limited_page(request, retry_after)
    verification = await verify(session=session, code=nomor, name=nama)
    return _verification_page(request, _public(verification))


def _limit(limiter: Any, request: Request) -> None:
    retry_after = limiter.hit(_client(request))
    if retry_after is not None:
        raise TooManyRequests(
            f"Terlalu banyak permintaan verifikasi; coba lagi dalam {retry_after} detik.",
            headers={"Retry-After": str(retry_after), **_PRIVATE_HEADERS},
        )


@router.get(
    "/verify/{code:path}",
    response_class=HTMLResponse,
    summary="The verification page an employer opens (Bahasa Indonesia)",
    responses={429: _PAGE_LIMITED},
)
async def verify_page(
    code: str,
    request: Request,
    session: SessionDep,
    limiter: VerifyLimiterDep,
    name: Name = None,
) -> HTMLResponse:
    retry_after = limiter.hit(_client(request))
    if retry_after is not None:
        return _limited_page(request, retry_after)
    verification = await verify(session=session, code=code, name=name)
    return _verification_page(request, _public(verification))


def _client(request: Request) -> str:
    # The socket's peer, or behind a proxy named in TRUSTED_PROXIES the client it forwards
    # for: a forwarded header from anyone else would let a caller pick their own key.
    return client_address(request)


def _public(verification: Verification) -> VerificationPublic:
    if verification.result is VerificationResult.INVALID:
        # Tampered with or forged: said so, and nothing read from it is shown.
        return VerificationPublic(result=VerificationResult.INVALID)
    facts = verification.facts
    if verification.result is VerificationResult.UNKNOWN or facts is None:
        return VerificationPublic(result=VerificationResult.UNKNOWN)
    if verification.erased:
        # Nothing that names the holder is left; the presented credential matched our hash.
        return VerificationPublic(
            result=verification.result,
            number=verification.number,
            program_code=facts.program_code,
            program_title=facts.program_title,
            issued_on=facts.issued_on,
            issuer=facts.issuer,
            revoked_on=verification.revoked_on,
            holder_data_erased=True,
        )
    certificate = verification.certificate
    # Open Badges credentials carry only a salted hash of the name, checked against the row.
    name = facts.recipient_name or (certificate.recipient_name if certificate else None)
    return VerificationPublic(
        result=verification.result,
        number=facts.number,
        recipient_name=name,
        program_code=facts.program_code,
        program_title=facts.program_title,
        competency_units=facts.competency_units,
        hours=facts.hours,
        start_date=facts.start_date,
        end_date=facts.end_date,
        issued_on=facts.issued_on,
        issuer=facts.issuer,
        partner=facts.partner,
        revoked_on=verification.revoked_on,
        replaced_by_number=verification.replaced_by_number,
    )


# --- the pages ------------------------------------------------------------------------------


def _escaped(value: Any) -> Markup:
    # Every value is escaped, with the stdlib's entities (an apostrophe is &#x27;): the pages
    # read byte for byte as they did when they were written in Python.
    return value if isinstance(value, Markup) else Markup(escape(str(value)))


_templates = Jinja2Templates(
    env=Environment(
        loader=PackageLoader("bekal.certification"),
        autoescape=True,
        finalize=_escaped,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
)
_templates.env.filters["tanggal"] = indonesian_date


def _verification_page(request: Request, verification: VerificationPublic) -> HTMLResponse:
    return _templates.TemplateResponse(
        request, "verification.html", {"v": verification}, headers=_PAGE_HEADERS
    )


def _limited_page(request: Request, retry_after: int) -> HTMLResponse:
    return _templates.TemplateResponse(
        request,
        "limited.html",
        {"retry_after": retry_after},
        status_code=429,
        headers={"Retry-After": str(retry_after), **_PAGE_HEADERS},
    )


@cache
def _stylesheet() -> str:
    return "\n".join(path.read_text("utf-8") for path in _STYLESHEETS)


@router.get("/public/verifikasi.css", include_in_schema=False)
async def verification_stylesheet() -> Response:
    return Response(
        _stylesheet(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )
