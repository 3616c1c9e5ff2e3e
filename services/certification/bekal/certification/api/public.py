"""Public, unauthenticated: the signing keys and certificate verification (JSON and a page)."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from bekal.certification import services
from bekal.certification.deps import SessionDep, SignerDep, VerifyLimiterDep
from bekal.certification.domain import VerificationResult
from bekal.certification.schemas import JSONWebKeySet, VerificationPublic
from bekal.shared.problems import TooManyRequests

router = APIRouter(tags=["public"])

# A verification page names a person: keep it out of search engines and shared caches.
_PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
}


@router.get(
    "/.well-known/jwks.json",
    response_model=JSONWebKeySet,
    summary="Every public key that ever signed a certificate (JWKS), newest first",
)
async def jwks(session: SessionDep, signer: SignerDep, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    return {"keys": await services.published_keys(session, signer=signer)}


@router.get(
    "/public/verify/{code:path}",
    response_model=VerificationPublic,
    response_model_exclude_unset=True,
    summary="Verify a certificate by its verification code or its (URL-encoded) number",
    responses={429: {"description": "Too many verifications from this client"}},
)
async def verify_json(
    code: str, request: Request, session: SessionDep, limiter: VerifyLimiterDep, response: Response
) -> VerificationPublic:
    retry_after = limiter.hit(_client(request))
    if retry_after is not None:
        raise TooManyRequests(
            f"Terlalu banyak permintaan verifikasi; coba lagi dalam {retry_after} detik.",
            headers={"Retry-After": str(retry_after), **_PRIVATE_HEADERS},
        )
    response.headers.update(_PRIVATE_HEADERS)
    return _public(await services.verify(session, code=code))


@router.get(
    "/verify/{code:path}",
    response_class=HTMLResponse,
    summary="The verification page an employer opens (Bahasa Indonesia)",
)
async def verify_page(
    code: str, request: Request, session: SessionDep, limiter: VerifyLimiterDep
) -> HTMLResponse:
    retry_after = limiter.hit(_client(request))
    if retry_after is not None:
        body = _page(
            "Terlalu banyak permintaan",
            f"<p>Terlalu banyak permintaan verifikasi dari alamat Anda. "
            f"Coba lagi dalam {retry_after} detik.</p>",
        )
        return HTMLResponse(
            body, status_code=429, headers={"Retry-After": str(retry_after), **_PRIVATE_HEADERS}
        )
    verification = await services.verify(session, code=code)
    return HTMLResponse(_render(_public(verification)), headers=_PRIVATE_HEADERS)


def _client(request: Request) -> str:
    # The socket's peer. Behind a proxy, uvicorn's --proxy-headers/--forwarded-allow-ips puts
    # the real client here; trusting X-Forwarded-For ourselves would let anyone pick their key.
    return request.client.host if request.client else "unknown"


def _public(verification: services.Verification) -> VerificationPublic:
    claims = verification.claims
    if verification.result is VerificationResult.UNKNOWN or claims is None:
        return VerificationPublic(result=VerificationResult.UNKNOWN)
    certificate = verification.certificate
    return VerificationPublic(
        result=verification.result,
        number=claims["number"],
        recipient_name=claims["recipient_name"],
        program_code=claims["program_code"],
        program_title=claims["program_title"],
        competency_units=claims["competency_units"],
        hours=claims["hours"],
        start_date=claims["start_date"],
        end_date=claims["end_date"],
        issued_on=claims["issued_on"],
        issuer=claims["issuer"],
        partner=claims.get("partner"),
        revoked_on=certificate.revoked_on if certificate else None,
    )


# --- the page -------------------------------------------------------------------------------

_MONTHS = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)


def _tanggal(d: date | None) -> str:
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}" if d else "-"


def _render(v: VerificationPublic) -> str:
    if v.result is VerificationResult.UNKNOWN:
        return _page(
            "Sertifikat tidak dikenal",
            "<p class='status unknown'>Sertifikat tidak dikenal</p>"
            "<p>Kode atau nomor ini tidak terdaftar sebagai sertifikat yang diterbitkan. "
            "Periksa kembali kode pada sertifikat, atau hubungi penerbit.</p>",
        )
    if v.result is VerificationResult.REVOKED:
        status = (
            "<p class='status revoked'>Sertifikat telah dicabut</p>"
            f"<p>Sertifikat ini dicabut oleh penerbit pada {_tanggal(v.revoked_on)} "
            "dan tidak berlaku lagi.</p>"
        )
        title = "Sertifikat telah dicabut"
    else:
        status = (
            "<p class='status valid'>Sertifikat sah</p>"
            "<p>Sertifikat ini diterbitkan oleh penerbit di bawah dan tanda tangan digitalnya "
            "telah diperiksa.</p>"
        )
        title = "Sertifikat sah"
    units = "".join(
        f"<li>{escape(u.code)} &mdash; {escape(u.title)}</li>" for u in (v.competency_units or [])
    )
    rows = [
        ("Nomor sertifikat", escape(v.number or "")),
        ("Nama", escape(v.recipient_name or "")),
        ("Program pelatihan", escape(v.program_title or "")),
        ("Unit kompetensi", f"<ul>{units}</ul>"),
        ("Jumlah jam pelajaran", f"{v.hours} jam"),
        ("Tanggal pelatihan", f"{_tanggal(v.start_date)} s.d. {_tanggal(v.end_date)}"),
        ("Tanggal terbit", _tanggal(v.issued_on)),
        ("Penerbit", escape(v.issuer or "")),
    ]
    if v.partner:
        rows.append(("Mitra pelaksana", escape(v.partner)))
    table = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    return _page(title, f"{status}<table>{table}</table>")


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="id">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{escape(title)} &middot; Verifikasi Sertifikat</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem;
       color: #1a1a1a; }}
.status {{ font-size: 1.5rem; font-weight: bold; }}
.valid {{ color: #0a6b2d; }} .revoked {{ color: #a31515; }} .unknown {{ color: #6b4e00; }}
th {{ text-align: left; vertical-align: top; padding: .3rem 1rem .3rem 0; }}
td {{ padding: .3rem 0; }} ul {{ margin: 0; padding-left: 1.2rem; }}
</style>
</head>
<body>
<h1>Verifikasi Sertifikat Pelatihan</h1>
{body}
</body>
</html>
"""
