"""Certificate rules: numbering, the signed claims, what a verifier is told."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

ISSUER = "Direktorat Jenderal Industri Kecil, Menengah, dan Aneka, Kementerian Perindustrian"
NUMBER_PREFIX = "IKMA"
NUMBER_PATTERN = re.compile(rf"^{NUMBER_PREFIX}/(\d{{4}})/(\d{{6,}})$")
# The issuing directorate works on Western Indonesia Time; a certificate's date is its date there.
ISSUER_TIMEZONE = ZoneInfo("Asia/Jakarta")

# What the credential may say, and nothing else. A facility, a session or a participant id
# would tie the bearer to a prison: the certificate is shown to employers after release.
CLAIM_NAMES = frozenset(
    {
        "jti",
        "number",
        "recipient_name",
        "program_code",
        "program_title",
        "sector",
        "competency_units",
        "hours",
        "start_date",
        "end_date",
        "issued_on",
        "issuer",
        "partner",
    }
)

# Words that reveal custody. They never come from our own fields, but free text written
# upstream (a program title, a partner's name) might carry them; see custody_terms_in.
CUSTODY_TERMS = (
    "lapas",
    "lembaga pemasyarakatan",
    "pemasyarakatan",
    "rutan",
    "rumah tahanan",
    "lpka",
    "penjara",
    "narapidana",
    "napi",
    "warga binaan",
    "tahanan",
    "prison",
    "inmate",
)
_CUSTODY_RE = re.compile(r"\b(" + "|".join(re.escape(t) for t in CUSTODY_TERMS) + r")\b", re.I)


class CertificateStatus(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"


class VerificationResult(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Competency:
    code: str
    title: str


def certificate_number(year: int, sequence: int) -> str:
    """``IKMA/<year>/<sequence>``: six digits, more only past the millionth of a year."""
    if not 1900 <= year <= 9999:
        raise ValueError(f"year out of range: {year}")
    if sequence < 1:
        raise ValueError(f"sequence must be positive: {sequence}")
    return f"{NUMBER_PREFIX}/{year}/{sequence:06d}"


def number_year(end_date: date) -> int:
    """The year in the number is the year the course ended, not the year it was signed."""
    return end_date.year


def is_certificate_number(text: str) -> bool:
    return NUMBER_PATTERN.match(text) is not None


def issue_date(now: datetime) -> date:
    """The calendar date of an issuance at ``now`` (aware) in the issuer's time zone."""
    if now.tzinfo is None:
        raise ValueError("naive datetime")
    return now.astimezone(ISSUER_TIMEZONE).date()


def new_verification_code() -> str:
    """Unguessable (144 bits): knowing one certificate's code says nothing about another's."""
    return secrets.token_urlsafe(18)


def credential_claims(
    *,
    certificate_id: uuid.UUID,
    number: str,
    recipient_name: str,
    program_code: str,
    program_title: str,
    sector: str,
    competency_units: Iterable[Competency],
    hours: int,
    start_date: date,
    end_date: date,
    issued_on: date,
    partner: str | None,
) -> dict[str, Any]:
    """What the credential signs: the person, the course, its competencies, the issuer, dates."""
    if end_date < start_date:
        raise ValueError("end_date before start_date")
    claims: dict[str, Any] = {
        "jti": str(certificate_id),
        "number": number,
        "recipient_name": recipient_name.strip(),
        "program_code": program_code,
        "program_title": program_title,
        "sector": sector,
        "competency_units": [{"code": u.code, "title": u.title} for u in competency_units],
        "hours": hours,
        "start_date": start_date.isoformat(),
        "end_date": end_date.isoformat(),
        "issued_on": issued_on.isoformat(),
        "issuer": ISSUER,
        "partner": partner,
    }
    return claims


def custody_terms_in(claims: Mapping[str, Any]) -> list[str]:
    """Custody words found anywhere in the claims' text (lower-cased, each once, in order)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            for match in _CUSTODY_RE.finditer(value):
                term = match.group(1).lower()
                if term not in found:
                    found.append(term)
        elif isinstance(value, Mapping):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    walk(claims)
    return found


def verification_result(
    *, exists: bool, signature_valid: bool, revoked: bool
) -> VerificationResult:
    """What a verifier is told.

    A stored certificate whose signature no longer checks out was altered after signing: we
    cannot vouch for it, so it is reported like one we never issued (and logged for us).
    """
    if not exists or not signature_valid:
        return VerificationResult.UNKNOWN
    return VerificationResult.REVOKED if revoked else VerificationResult.VALID
