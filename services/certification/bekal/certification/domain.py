"""Certificate rules: numbering, the signed claims, what a verifier is told."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import hmac
import re
import secrets
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit
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
    # Never issued by us, or asked for by number with a name that is not the holder's.
    UNKNOWN = "unknown"
    # Tampered with or forged: a signature that fails, a key that is not ours, an altered
    # payload, or a credential that is not the one issued under its number.
    INVALID = "invalid"


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


def course_custody_terms(
    *,
    program_code: str,
    program_title: str,
    sector: str,
    partner: str | None,
    competency_units: Iterable[Competency],
) -> list[str]:
    """Custody words in a course's own text, the only free text a credential carries.

    The rest of a credential is our fixed wording, dates, ids and hashes. Every certificate of
    a course has the same text, so the scan is remembered per course.
    """
    texts = (program_code, program_title, sector, partner or "")
    return list(
        _course_custody_terms(texts + tuple(t for u in competency_units for t in (u.code, u.title)))
    )


@functools.lru_cache(maxsize=512)
def _course_custody_terms(texts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(custody_terms_in({"course": list(texts)}))


def verification_result(
    *, exists: bool, signature_valid: bool, revoked: bool
) -> VerificationResult:
    """What a verifier is told.

    A certificate whose signature no longer checks out was altered after signing (or forged):
    it is "invalid", which a verifier must be able to tell from one we never issued.
    """
    if not exists:
        return VerificationResult.UNKNOWN
    if not signature_valid:
        return VerificationResult.INVALID
    return VerificationResult.REVOKED if revoked else VerificationResult.VALID


# --- Open Badges 3.0 / W3C Verifiable Credentials 2.0 -----------------------------------------

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
# Our own terms (certificateNumber, competencyUnits, hours), so that they are defined terms
# and not issuer-dependent ones; served at this path under PUBLIC_BASE_URL.
BEKAL_CONTEXT_PATH = "/contexts/sertifikat-v1.jsonld"
# The JWT claims that restate an OpenBadgeCredential (Open Badges 3.0, section 8.2); they are
# not part of the credential, so its Data Integrity form leaves them out.
JWT_CLAIMS = ("iss", "jti", "nbf", "exp", "sub", "iat")
# How long a status list credential may be relied on: a verifier that cached one must fetch
# it again within this time, so a revocation reaches it at the latest then.
STATUS_LIST_VALIDITY = timedelta(hours=24)


def bekal_context_url(public_base_url: str) -> str:
    return public_base_url.rstrip("/") + BEKAL_CONTEXT_PATH


def credential_subject_id(certificate_id: uuid.UUID) -> str:
    """The subject's id: a name for this credential's subject that reveals nobody.

    Open Badges requires the JWT's ``sub`` to be ``credentialSubject.id``; a participant id
    would tie the bearer to a prison and across certificates, so each certificate names its
    subject anew (derived from its own id, so nothing more is stored).
    """
    return f"urn:uuid:{uuid.uuid5(_SUBJECT_NAMESPACE, str(certificate_id))}"


_SUBJECT_NAMESPACE = uuid.UUID("4f1f3c1e-93a5-5b8e-9d52-6f0b7c2a9e10")
ACHIEVEMENT_TYPE = "CertificateOfCompletion"

# W3C Bitstring Status List v1.0: a list is at least 16 KB (131,072 entries) so that one
# revoked bit among many says nothing about whose certificate it is (herd privacy).
STATUS_LIST_SIZE = 131_072
# A list is closed to new certificates once this share of it is used, so that random indexes
# keep being found quickly; the next list is opened then.
STATUS_LIST_FILL_LIMIT = STATUS_LIST_SIZE // 2


class RevocationKind(StrEnum):
    """Why a certificate stopped being valid, as published (the staff's own words stay here)."""

    REVOKED = "revoked"
    SUPERSEDED = "superseded"  # re-issued under a new number after a correction


def normalized_name(name: str) -> str:
    """A person's name as compared and hashed: NFC, single spaces, case-folded."""
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


# The apostrophes and quotes of a name (Ma'ruf, Nur'aini, Ja`far, Sa'adah, ...), written
# typographic (U+2019, U+2018) or straight, as a modifier letter (U+02BC) or with an accent
# key: one mark that people write in any of these ways or leave out, so a typed name is
# compared without them.
_APOSTROPHES_AND_QUOTES = dict.fromkeys(
    map(
        ord,
        "'\u2018\u2019\u201a\u201b`\u00b4\u02b9\u02bb\u02bc\u02bd\u02be\u02bf\u02c8"
        '\u2032\u2035\uff07"\u201c\u201d\u201e\u201f\u2033\uff02',
    )
)
# Latin letters whose stroke or bar Unicode does not decompose (so NFKD keeps them whole):
# typed without it on a keyboard that lacks them, like any other accent.
_LETTERS_WITHOUT_DECOMPOSITION = str.maketrans(
    {"\u0142": "l", "\u0111": "d", "\u00f0": "d", "\u00f8": "o", "\u0127": "h"}
    | {"\u0131": "i", "\u0167": "t", "\u0180": "b", "\u0268": "i"}
    | {"\u00e6": "ae", "\u0153": "oe", "\u00fe": "th"}
)


def typed_name_key(name: str) -> str:
    """A name as an employer may type it from the paper, reduced to what must agree.

    Apostrophes and quotes dropped, case-folded, accents dropped (NFKD without combining
    marks, and the stroke of ł, đ, ø ...), runs of whitespace made one space. "Dédé", "DEDE"
    and "Dede" give one key, so do "Ma\u2019ruf" (typographic apostrophe), "Ma'ruf" and
    "Maruf"; "Dodo" another.
    """
    text = name.translate(_APOSTROPHES_AND_QUOTES).casefold()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(text.translate(_LETTERS_WITHOUT_DECOMPOSITION).split())


def typed_name_matches(printed: str, typed: str) -> bool:
    """Whether ``typed`` is the printed name ``printed`` as typed (compared in constant time)."""
    key = typed_name_key(printed)
    return bool(key) and hmac.compare_digest(key.encode(), typed_name_key(typed).encode())


def display_name(name: str) -> str:
    """A person's name as printed: NFC, trimmed, single spaces (case kept)."""
    return " ".join(unicodedata.normalize("NFC", name).split())


def new_salt() -> str:
    return secrets.token_hex(16)


def identity_hash(name: str, salt: str) -> str:
    """Open Badges' salted identity hash: ``sha256$`` + hex SHA-256 of identity then salt."""
    digest = hashlib.sha256((normalized_name(name) + salt).encode("utf-8")).hexdigest()
    return f"sha256${digest}"


def issuer_did(public_base_url: str) -> str:
    """The issuer's did:web, from the public address (port percent-encoded, path as ``:``)."""
    parts = urlsplit(public_base_url)
    if not parts.hostname:
        raise ValueError(f"no host in {public_base_url!r}")
    host = parts.hostname + (f"%3A{parts.port}" if parts.port else "")
    path = [quote(p, safe="") for p in parts.path.split("/") if p]
    return ":".join(["did", "web", host, *path])


def _activity_time(d: date) -> str:
    # Open Badges wants date-times; a course day is a day in the issuer's time zone.
    return f"{d.isoformat()}T00:00:00+07:00"


def status_entry(*, list_url: str, index: int) -> dict[str, str]:
    """The credential's ``credentialStatus``: a BitstringStatusListEntry for revocation."""
    if not 0 <= index < STATUS_LIST_SIZE:
        raise ValueError(f"status list index out of range: {index}")
    return {
        "id": f"{list_url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": str(index),
        "statusListCredential": list_url,
    }


def open_badge_credential(
    *,
    certificate_id: uuid.UUID,
    number: str,
    issuer_id: str,
    recipient_name: str,
    salt: str,
    program_id: uuid.UUID,
    program_code: str,
    program_title: str,
    sector: str,
    competency_units: Iterable[Competency],
    hours: int,
    start_date: date,
    end_date: date,
    issued_at: datetime,
    partner: str | None,
    status: Mapping[str, str],
    verification_url: str,
    context_url: str,
) -> dict[str, Any]:
    """An ``OpenBadgeCredential`` (VC 2.0 data model) and, beside it, the matching JWT claims.

    ``context_url`` is our context's address (``bekal_context_url``). The JWT claims are those
    Open Badges 3.0 requires of a JWT proof: ``iss`` = ``issuer.id``, ``jti`` = ``id``,
    ``nbf`` = ``validFrom``, ``sub`` = ``credentialSubject.id`` (section 8.2.4).

    The recipient is named only by a salted hash of their name: whoever holds the paper
    can prove it is theirs, but the credential alone does not say who they are. Nothing in it
    names a facility, a session or a participant id.
    """
    if end_date < start_date:
        raise ValueError("end_date before start_date")
    if issued_at.tzinfo is None:
        raise ValueError("naive datetime")
    credential_id = f"urn:uuid:{certificate_id}"
    units = [{"code": u.code, "title": u.title} for u in competency_units]
    subject: dict[str, Any] = {
        "id": credential_subject_id(certificate_id),
        "type": ["AchievementSubject"],
        "identifier": [
            {
                "type": "IdentityObject",
                "identityType": "name",
                "hashed": True,
                "identityHash": identity_hash(recipient_name, salt),
                "salt": salt,
            }
        ],
        "achievement": {
            "id": f"urn:uuid:{program_id}",
            "type": ["Achievement"],
            "achievementType": ACHIEVEMENT_TYPE,
            "humanCode": program_code,
            "name": program_title,
            "description": f"Bimbingan teknis {program_title} ({hours} jam pelajaran).",
            "criteria": {
                "narrative": "Kehadiran memenuhi batas minimum dan seluruh unit kompetensi "
                "dinilai kompeten."
            },
            "fieldOfStudy": sector,
            "alignment": [
                {
                    "type": ["Alignment"],
                    "targetType": "ceasn:Competency",
                    "targetCode": u["code"],
                    "targetName": u["title"],
                    "targetUrl": f"urn:bekal:competency:{quote(u['code'], safe='')}",
                }
                for u in units
            ],
        },
        "activityStartDate": _activity_time(start_date),
        "activityEndDate": _activity_time(end_date),
        # Not Open Badges terms: ours, defined in our context (context_url).
        "competencyUnits": units,
        "hours": hours,
    }
    if partner:
        # The institution that delivered and assessed the course on the issuer's behalf.
        subject["source"] = {
            "id": f"urn:bekal:partner:{quote(partner, safe='')}",
            "type": ["Profile"],
            "name": partner,
        }
    valid_from = issued_at.astimezone(UTC).replace(microsecond=0)
    return {
        "@context": [VC_CONTEXT, OB_CONTEXT, context_url],
        "id": credential_id,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": f"Sertifikat {program_title}",
        "certificateNumber": number,
        "issuer": {"id": issuer_id, "type": ["Profile"], "name": ISSUER},
        "validFrom": valid_from.isoformat().replace("+00:00", "Z"),
        "credentialSubject": subject,
        "credentialStatus": dict(status),
        "credentialSchema": [
            {
                "id": "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/"
                "ob_v3p0_achievementcredential_schema.json",
                "type": "1EdTechJsonSchemaValidator2019",
            }
        ],
        "evidence": [{"id": verification_url, "type": ["Evidence"], "name": "Verifikasi"}],
        # JWT claims that restate the credential (VC-JOSE-COSE allows both; they agree).
        "iss": issuer_id,
        "jti": credential_id,
        "nbf": int(valid_from.timestamp()),
        "sub": subject["id"],
    }


def unsecured_credential(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The credential alone, without the JWT claims that restate it (for an embedded proof)."""
    return {k: v for k, v in payload.items() if k not in JWT_CLAIMS}


class OpenBadgeClaimError(ValueError):
    """A JWT payload whose registered claims disagree with the credential it carries."""


def _numeric_date(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def check_open_badge_claims(
    payload: Mapping[str, Any], *, now: datetime, strict: bool = True
) -> None:
    """Open Badges 3.0's checks of a JWT proof's registered claims (section 8.2.6).

    ``iss`` = ``issuer.id``, ``sub`` = ``credentialSubject.id``, ``nbf`` = ``validFrom`` (which
    must have come), ``jti`` = ``id``; ``exp``, when there, = ``validUntil`` (which must not
    have passed). ``strict=False`` is for the credentials issued before these rules were met
    (``iat`` instead of ``nbf``, no ``sub``): what they carry must still agree.
    """
    issuer = payload.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, Mapping) else issuer
    subject = payload.get("credentialSubject")
    subject_id = subject.get("id") if isinstance(subject, Mapping) else None
    if payload.get("iss") != issuer_id:
        raise OpenBadgeClaimError("iss is not issuer.id")
    if payload.get("jti") != payload.get("id"):
        raise OpenBadgeClaimError("jti is not id")
    if strict or "sub" in payload or subject_id is not None:
        if payload.get("sub") is None or payload.get("sub") != subject_id:
            raise OpenBadgeClaimError("sub is not credentialSubject.id")
    valid_from = payload.get("validFrom")
    if not isinstance(valid_from, str):
        raise OpenBadgeClaimError("no validFrom")
    if strict or "nbf" in payload:
        if payload.get("nbf") != _numeric_date(valid_from):
            raise OpenBadgeClaimError("nbf is not validFrom")
    if _numeric_date(valid_from) > now.timestamp():
        raise OpenBadgeClaimError("validFrom has not come yet")
    valid_until = payload.get("validUntil")
    if "exp" in payload or valid_until is not None:
        if not isinstance(valid_until, str) or payload.get("exp") != _numeric_date(valid_until):
            raise OpenBadgeClaimError("exp is not validUntil")
        if _numeric_date(valid_until) <= now.timestamp():
            raise OpenBadgeClaimError("expired")


@dataclass(frozen=True)
class CertificateFacts:
    """What a verifier is shown, read from a verified credential of either format."""

    number: str
    program_code: str
    program_title: str
    competency_units: list[dict[str, str]]
    hours: int
    start_date: date
    end_date: date
    issued_on: date
    issuer: str
    partner: str | None
    recipient_name: str | None  # legacy credentials carry it; Open Badges ones only its hash
    identity_hash: str | None
    salt: str | None


def is_open_badge(payload: Mapping[str, Any]) -> bool:
    return "OpenBadgeCredential" in (payload.get("type") or [])


def credential_facts(payload: Mapping[str, Any]) -> CertificateFacts:
    """The facts of a verified credential: an OpenBadgeCredential or an earlier plain one."""
    if not is_open_badge(payload):
        return CertificateFacts(
            number=payload["number"],
            program_code=payload["program_code"],
            program_title=payload["program_title"],
            competency_units=list(payload["competency_units"]),
            hours=int(payload["hours"]),
            start_date=date.fromisoformat(payload["start_date"]),
            end_date=date.fromisoformat(payload["end_date"]),
            issued_on=date.fromisoformat(payload["issued_on"]),
            issuer=payload["issuer"],
            partner=payload.get("partner"),
            recipient_name=payload["recipient_name"],
            identity_hash=None,
            salt=None,
        )
    subject = payload["credentialSubject"]
    achievement = subject["achievement"]
    (identity,) = [i for i in subject["identifier"] if i.get("identityType") == "name"]
    valid_from = datetime.fromisoformat(payload["validFrom"].replace("Z", "+00:00"))
    return CertificateFacts(
        number=payload["certificateNumber"],
        program_code=achievement["humanCode"],
        program_title=achievement["name"],
        competency_units=list(subject["competencyUnits"]),
        hours=int(subject["hours"]),
        start_date=date.fromisoformat(subject["activityStartDate"][:10]),
        end_date=date.fromisoformat(subject["activityEndDate"][:10]),
        issued_on=issue_date(valid_from),
        issuer=payload["issuer"]["name"],
        partner=(subject.get("source") or {}).get("name"),
        recipient_name=None,
        identity_hash=identity["identityHash"],
        salt=identity["salt"],
    )


def name_matches(facts: CertificateFacts, name: str) -> bool:
    """Whether ``name`` is exactly the recipient's, as the credential holds it (hash compared in
    constant time; only case and spacing may differ). For the integrity of a stored row: a name
    typed by an employer is compared with ``typed_name_matches``."""
    if facts.identity_hash is not None and facts.salt is not None:
        return hmac.compare_digest(identity_hash(name, facts.salt), facts.identity_hash)
    if facts.recipient_name is None:
        return False
    return hmac.compare_digest(
        normalized_name(facts.recipient_name).encode(), normalized_name(name).encode()
    )


# --- Bitstring Status List --------------------------------------------------------------------


def encode_status_list(set_indexes: Iterable[int], size: int = STATUS_LIST_SIZE) -> str:
    """``encodedList``: multibase base64url (``u``) of the GZIP-compressed bitstring.

    Index 0 is the left-most (most significant) bit of the first byte, as the spec says.
    """
    if size < STATUS_LIST_SIZE or size % 8:
        raise ValueError(f"a status list has at least {STATUS_LIST_SIZE} bits, whole bytes")
    bits = bytearray(size // 8)
    for index in set_indexes:
        if not 0 <= index < size:
            raise ValueError(f"status list index out of range: {index}")
        bits[index // 8] |= 0x80 >> (index % 8)
    compressed = gzip.compress(bytes(bits), mtime=0)
    return "u" + base64.urlsafe_b64encode(compressed).rstrip(b"=").decode("ascii")


def status_bit(encoded_list: str, index: int) -> bool:
    """The bit at ``index`` of an ``encodedList`` (for checks and tests)."""
    text = encoded_list[1:] if encoded_list.startswith("u") else encoded_list
    bits = gzip.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def status_list_credential(
    *, list_url: str, issuer_id: str, encoded_list: str, now: datetime
) -> dict[str, Any]:
    """The BitstringStatusListCredential that publishes one list (signed by the caller)."""
    valid_from = now.astimezone(UTC).replace(microsecond=0)
    valid_until = valid_from + STATUS_LIST_VALIDITY
    return {
        "@context": [VC_CONTEXT],
        "id": list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer_id,
        "validFrom": valid_from.isoformat().replace("+00:00", "Z"),
        # Built fresh at each request; a copy kept longer than this must not be relied on.
        "validUntil": valid_until.isoformat().replace("+00:00", "Z"),
        "credentialSubject": {
            "id": f"{list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encoded_list,
        },
        "iss": issuer_id,
        "jti": list_url,
        "iat": int(valid_from.timestamp()),
        "exp": int(valid_until.timestamp()),
    }


def content_hash(credential: str) -> str:
    """What is kept of a certificate after its holder's data is erased: SHA-256 of the JWS."""
    return "sha256:" + hashlib.sha256(credential.encode("ascii")).hexdigest()


MONTHS_ID = (
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


def indonesian_date(d: date | None) -> str:
    """``7 September 2024``; ``-`` for no date."""
    return f"{d.day} {MONTHS_ID[d.month - 1]} {d.year}" if d else "-"
