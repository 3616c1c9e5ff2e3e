"""Certification rules without a database, a broker or HTTP: numbers, claims, keys, rate limit."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import io
import json
import uuid
from datetime import UTC, date, datetime

import pypdf
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bekal.certification import domain, pdf
from bekal.certification.domain import Competency, VerificationResult
from bekal.certification.ratelimit import SlidingWindowLimiter
from bekal.certification.signing import (
    CertificateSigner,
    CredentialError,
    b64url_decode,
    jwk_thumbprint,
    public_key_from_jwk,
    unverified_kid,
    verify_credential,
)

# RFC 8037, appendix A.1-A.3: an Ed25519 key and its RFC 7638 thumbprint.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def _claims(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "certificate_id": uuid.uuid4(),
        "number": "IKMA/2024/000001",
        "recipient_name": "  Siti Rahmawati ",
        "program_code": "WUB-BATIK",
        "program_title": "Bimtek Wirausaha Baru IKM Batik",
        "sector": "batik",
        "competency_units": [
            Competency("BTK.01", "Membatik tulis"),
            Competency("BTK.02", "Batik cap"),
        ],
        "hours": 40,
        "start_date": date(2024, 9, 3),
        "end_date": date(2024, 9, 7),
        "issued_on": date(2024, 9, 8),
        "partner": "Yayasan Batik Indonesia",
    }
    values.update(overrides)
    return domain.credential_claims(**values)  # type: ignore[arg-type]


# --- numbers --------------------------------------------------------------------------------


def test_number_is_prefix_year_and_six_digit_sequence():
    assert domain.certificate_number(2024, 1) == "IKMA/2024/000001"
    assert domain.certificate_number(2019, 30) == "IKMA/2019/000030"


def test_number_grows_past_six_digits_instead_of_wrapping():
    assert domain.certificate_number(2024, 1_000_000) == "IKMA/2024/1000000"


@pytest.mark.parametrize(("year", "sequence"), [(2024, 0), (2024, -1), (24, 1)])
def test_number_refuses_impossible_parts(year: int, sequence: int):
    with pytest.raises(ValueError):
        domain.certificate_number(year, sequence)


def test_number_year_is_the_year_the_course_ended():
    assert domain.number_year(date(2024, 12, 30)) == 2024
    assert domain.number_year(date(2025, 1, 2)) == 2025


def test_certificate_numbers_are_told_apart_from_verification_codes():
    assert domain.is_certificate_number("IKMA/2024/000001")
    assert not domain.is_certificate_number("IKMA/24/1")
    assert not domain.is_certificate_number(domain.new_verification_code())


def test_verification_codes_are_long_and_distinct():
    codes = {domain.new_verification_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 24 for c in codes)  # 18 random bytes, base64url


def test_issue_date_is_the_date_in_jakarta():
    # 20:00 UTC on 7 September is already 8 September in Western Indonesia Time.
    assert domain.issue_date(datetime(2024, 9, 7, 20, 0, tzinfo=UTC)) == date(2024, 9, 8)
    assert domain.issue_date(datetime(2024, 9, 7, 10, 0, tzinfo=UTC)) == date(2024, 9, 7)
    with pytest.raises(ValueError):
        domain.issue_date(datetime(2024, 9, 7, 10, 0))


# --- the claims -----------------------------------------------------------------------------


def test_claims_are_exactly_the_allowed_ones_and_name_no_facility():
    claims = _claims()
    assert set(claims) == domain.CLAIM_NAMES
    assert not [name for name in claims if "facility" in name or "session" in name]
    assert "participant_id" not in claims
    assert claims["issuer"] == (
        "Direktorat Jenderal Industri Kecil, Menengah, dan Aneka, Kementerian Perindustrian"
    )
    assert claims["recipient_name"] == "Siti Rahmawati"
    assert claims["competency_units"] == [
        {"code": "BTK.01", "title": "Membatik tulis"},
        {"code": "BTK.02", "title": "Batik cap"},
    ]
    assert claims["start_date"] == "2024-09-03" and claims["issued_on"] == "2024-09-08"
    json.dumps(claims)  # serialisable as it is


def test_claims_refuse_a_course_that_ends_before_it_starts():
    with pytest.raises(ValueError):
        _claims(start_date=date(2024, 9, 7), end_date=date(2024, 9, 3))


def test_custody_words_in_free_text_are_found():
    assert domain.custody_terms_in(_claims()) == []
    claims = _claims(
        program_title="Batik Lapas Perempuan Tangerang",
        competency_units=[Competency("X", "Kerajinan warga binaan")],
    )
    assert domain.custody_terms_in(claims) == ["lapas", "warga binaan"]


def test_custody_words_of_a_course_are_found_in_each_of_its_texts():
    # What a credential carries besides our fixed wording: the course's code, title, sector,
    # partner and units. A word in any of them is found, each once, in the order of the fields.
    found = domain.course_custody_terms(
        program_code="WUB-BTK",
        program_title="Batik tulis",
        sector="batik",
        partner="Koperasi Rutan Cipinang",
        competency_units=[Competency("NAPI-1", "Membatik"), Competency("B", "Kerja lapas")],
    )
    assert found == ["rutan", "napi", "lapas"]
    assert (
        domain.course_custody_terms(
            program_code="WUB-BTK",
            program_title="Batik tulis",
            sector="batik",
            partner=None,
            competency_units=[Competency("BTK.01", "Membatik cap")],
        )
        == []
    )


def test_custody_words_are_matched_as_words_only():
    # "ketahanan" (resilience) contains "tahanan" but says nothing about custody.
    assert domain.custody_terms_in({"t": "Ketahanan pangan olahan"}) == []


@pytest.mark.parametrize(
    ("exists", "signature_valid", "revoked", "expected"),
    [
        (True, True, False, VerificationResult.VALID),
        (True, True, True, VerificationResult.REVOKED),
        (False, False, False, VerificationResult.UNKNOWN),
        (True, False, False, VerificationResult.INVALID),  # altered after signing
        (True, False, True, VerificationResult.INVALID),
    ],
)
def test_what_a_verifier_is_told(exists, signature_valid, revoked, expected):
    assert (
        domain.verification_result(exists=exists, signature_valid=signature_valid, revoked=revoked)
        is expected
    )


# --- keys and signatures --------------------------------------------------------------------


def test_kid_is_the_rfc7638_thumbprint_of_the_public_key():
    assert jwk_thumbprint({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}) == RFC8037_THUMBPRINT
    signer = CertificateSigner(Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D)))
    assert signer.jwk["x"] == RFC8037_X
    assert signer.kid == RFC8037_THUMBPRINT
    assert signer.jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": RFC8037_X,
        "kid": RFC8037_THUMBPRINT,
        "alg": "EdDSA",
        "use": "sig",
    }


def test_thumbprint_ignores_optional_members():
    base = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    assert jwk_thumbprint({**base, "kid": "other", "use": "sig"}) == jwk_thumbprint(base)


def test_credential_is_a_compact_eddsa_jws_with_the_kid():
    signer = CertificateSigner(Ed25519PrivateKey.generate())
    token = signer.sign(_claims())
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    assert header["alg"] == "EdDSA" and header["kid"] == signer.kid
    assert unverified_kid(token) == signer.kid
    # Checked with the bare primitive, not with PyJWT.
    signer.public_key.verify(b64url_decode(signature_b64), f"{header_b64}.{payload_b64}".encode())
    assert json.loads(b64url_decode(payload_b64))["number"] == "IKMA/2024/000001"


def test_changed_payload_or_other_key_does_not_verify():
    signer = CertificateSigner(Ed25519PrivateKey.generate())
    token = signer.sign(_claims())
    assert verify_credential(token, signer.public_key)["recipient_name"] == "Siti Rahmawati"

    header_b64, payload_b64, signature_b64 = token.split(".")
    payload = json.loads(b64url_decode(payload_b64))
    payload["recipient_name"] = "Siti Rahmawatu"
    forged_payload = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    forged = f"{header_b64}.{forged_payload}.{signature_b64}"
    with pytest.raises(CredentialError):
        verify_credential(forged, signer.public_key)
    with pytest.raises(InvalidSignature):
        signer.public_key.verify(
            b64url_decode(signature_b64), f"{header_b64}.{forged_payload}".encode()
        )

    stranger = CertificateSigner(Ed25519PrivateKey.generate())
    with pytest.raises(CredentialError):
        verify_credential(token, stranger.public_key)


def test_public_key_is_rebuilt_from_its_jwk_and_bad_jwks_are_refused():
    signer = CertificateSigner(Ed25519PrivateKey.generate())
    token = signer.sign(_claims())
    assert verify_credential(token, public_key_from_jwk(signer.jwk))["hours"] == 40
    with pytest.raises(CredentialError):
        public_key_from_jwk({"kty": "RSA", "n": "x", "e": "AQAB"})
    with pytest.raises(CredentialError):
        public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": "c2hvcnQ"})


def test_garbage_is_not_a_credential():
    with pytest.raises(CredentialError):
        unverified_kid("not-a-jws")


def test_signing_key_file_is_created_once_and_reused(tmp_path):
    path = tmp_path / "keys" / "certificate-signing-key.pem"
    first = CertificateSigner.from_key_file(path)
    assert path.exists() and (path.stat().st_mode & 0o777) == 0o600
    assert CertificateSigner.from_key_file(path).kid == first.kid


# --- rate limit -----------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_allows_the_limit_per_window_then_says_how_long_to_wait():
    clock = _Clock()
    limiter = SlidingWindowLimiter(3, window=60, clock=clock)
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    clock.now += 10
    assert limiter.hit("a") == 50  # the first hit leaves the window 60 s after it was made
    assert limiter.hit("b") is None  # per client


def test_rate_limit_window_slides():
    clock = _Clock()
    limiter = SlidingWindowLimiter(2, window=60, clock=clock)
    limiter.hit("a")
    clock.now += 30
    limiter.hit("a")
    clock.now += 29
    assert limiter.hit("a") == 1
    clock.now += 1.5  # the first hit has left the window, the second has not
    assert limiter.hit("a") is None
    assert limiter.hit("a") is not None


def test_rate_limit_forgets_the_least_recently_seen_clients_first():
    limiter = SlidingWindowLimiter(1, max_clients=2, clock=_Clock())
    limiter.hit("a")
    limiter.hit("b")
    limiter.hit("a")  # refused, but "a" is now the most recently seen
    limiter.hit("c")
    assert limiter.tracked_clients == 2
    assert limiter.hit("b") is None  # forgotten, so counted afresh
    assert limiter.hit("a") is None  # forgotten in turn when b came back


# --- Open Badges 3.0 credentials ---------------------------------------------------------------

STATUS_URL = "https://sertifikat.example.id/status-lists/1"


def _open_badge(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "certificate_id": uuid.UUID("00000000-0000-4000-8000-000000000001"),
        "number": "IKMA/2024/000001",
        "issuer_id": "did:web:sertifikat.example.id",
        "recipient_name": "Siti Rahmawati",
        "salt": "0123456789abcdef",
        "program_id": uuid.uuid4(),
        "program_code": "WUB-BATIK",
        "program_title": "Bimtek Wirausaha Baru IKM Batik",
        "sector": "batik",
        "competency_units": [Competency("BTK.01", "Membatik tulis")],
        "hours": 40,
        "start_date": date(2024, 9, 3),
        "end_date": date(2024, 9, 7),
        "issued_at": datetime(2024, 9, 7, 18, 30, tzinfo=UTC),
        "partner": "Yayasan Batik Indonesia",
        "status": domain.status_entry(list_url=STATUS_URL, index=4242),
        "verification_url": "https://sertifikat.example.id/verify/abc",
        "context_url": "https://sertifikat.example.id/contexts/sertifikat-v1.jsonld",
    }
    values.update(overrides)
    return domain.open_badge_credential(**values)  # type: ignore[arg-type]


def test_open_badge_credential_shape():
    vc = _open_badge()
    assert vc["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert vc["@context"] == [
        domain.VC_CONTEXT,
        domain.OB_CONTEXT,
        "https://sertifikat.example.id/contexts/sertifikat-v1.jsonld",
    ]
    assert vc["id"] == vc["jti"] == "urn:uuid:00000000-0000-4000-8000-000000000001"
    assert vc["issuer"]["id"] == vc["iss"] == "did:web:sertifikat.example.id"
    assert vc["validFrom"] == "2024-09-07T18:30:00Z"
    subject = vc["credentialSubject"]
    assert subject["achievement"]["achievementType"] == "CertificateOfCompletion"
    assert subject["activityStartDate"] == "2024-09-03T00:00:00+07:00"
    assert vc["credentialStatus"]["statusListIndex"] == "4242"
    assert "Siti" not in json.dumps(vc)  # only the salted hash names the recipient


def test_open_badge_facts_come_back_and_the_issue_date_is_jakarta_time():
    facts = domain.credential_facts(_open_badge())
    assert facts.number == "IKMA/2024/000001" and facts.hours == 40
    assert facts.competency_units == [{"code": "BTK.01", "title": "Membatik tulis"}]
    assert (facts.start_date, facts.end_date) == (date(2024, 9, 3), date(2024, 9, 7))
    assert facts.issued_on == date(2024, 9, 8)  # 18:30 UTC is past midnight in Jakarta
    assert facts.partner == "Yayasan Batik Indonesia" and facts.recipient_name is None


def test_earlier_plain_credentials_still_give_their_facts():
    facts = domain.credential_facts(_claims())
    assert facts.recipient_name == "Siti Rahmawati" and facts.identity_hash is None
    assert domain.name_matches(facts, "SITI rahmawati")
    assert not domain.name_matches(facts, "Siti Rahmawat")


def test_identity_hash_is_salted_and_ignores_case_and_spacing():
    a = domain.identity_hash("Siti Rahmawati", "salt-1")
    assert a == domain.identity_hash("  siti   RAHMAWATI ", "salt-1")
    assert a != domain.identity_hash("Siti Rahmawati", "salt-2")
    assert a != domain.identity_hash("Siti Rahmawaty", "salt-1")
    assert a.startswith("sha256$") and len(a) == len("sha256$") + 64
    facts = domain.credential_facts(_open_badge())
    assert domain.name_matches(facts, "siti rahmawati")
    assert not domain.name_matches(facts, "Dewi Lestari")
    assert domain.display_name("  Siti   Rahmawati ") == "Siti Rahmawati"


@pytest.mark.parametrize(
    ("url", "did"),
    [
        ("https://sertifikat.example.id", "did:web:sertifikat.example.id"),
        ("https://sertifikat.example.id/", "did:web:sertifikat.example.id"),
        ("http://127.0.0.1:8003", "did:web:127.0.0.1%3A8003"),
        ("https://kemenperin.go.id/sertifikat/ikma", "did:web:kemenperin.go.id:sertifikat:ikma"),
    ],
)
def test_issuer_did_web_follows_the_public_address(url: str, did: str):
    assert domain.issuer_did(url) == did


def test_status_list_is_gzip_base64url_with_index_zero_the_first_bit():
    encoded = domain.encode_status_list({0, 9, 131_071})
    assert encoded.startswith("u")
    raw = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert len(raw) == 131_072 // 8
    assert raw[0] == 0b1000_0000 and raw[1] == 0b0100_0000 and raw[-1] == 0b0000_0001
    assert sum(bin(b).count("1") for b in raw) == 3
    assert domain.status_bit(encoded, 9) and not domain.status_bit(encoded, 10)


def test_status_list_refuses_short_lists_and_outside_indexes():
    with pytest.raises(ValueError):
        domain.encode_status_list([], size=1024)
    with pytest.raises(ValueError):
        domain.encode_status_list([131_072])
    with pytest.raises(ValueError):
        domain.status_entry(list_url=STATUS_URL, index=-1)


def test_vc_jose_header_names_the_did_url_and_the_payload_is_the_credential():
    signer = CertificateSigner(Ed25519PrivateKey.generate())
    vc = _open_badge()
    token = signer.sign_vc(vc, issuer_id="did:web:sertifikat.example.id")
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    assert header == {
        "alg": "EdDSA",
        "typ": "vc+jwt",
        "cty": "vc",
        "kid": f"did:web:sertifikat.example.id#{signer.kid}",
    }
    assert unverified_kid(token) == signer.kid
    signer.public_key.verify(b64url_decode(signature_b64), f"{header_b64}.{payload_b64}".encode())
    assert json.loads(b64url_decode(payload_b64)) == vc
    assert verify_credential(token, signer.public_key) == vc


def test_content_hash_changes_with_one_character():
    assert domain.content_hash("a.b.c") != domain.content_hash("a.b.d")
    assert domain.content_hash("a.b.c").startswith("sha256:")


def test_pdf_prints_the_name_and_the_number_and_no_partner_line_without_a_partner():
    document = pdf.render(
        pdf.PrintedCertificate(
            number="IKMA/2024/000009",
            recipient_name="Nguyễn Thị Ānh",
            program_title="Bimtek Olahan Pangan",
            competency_units=[("PGN.01", "Pengolahan makanan")],
            hours=30,
            start_date=date(2023, 7, 17),
            end_date=date(2023, 7, 22),
            issued_on=date(2023, 7, 23),
            partner=None,
            verification_url="https://sertifikat.example.id/verify/abc",
        )
    )
    text = pypdf.PdfReader(io.BytesIO(document)).pages[0].extract_text()
    assert "Nguyễn Thị Ānh" in text and "IKMA/2024/000009" in text  # exactly, accents and all
    assert "bekerja sama" not in text  # no partner, no partner line


def test_pdf_sets_a_long_competency_list_smaller_to_keep_it_above_the_qr_code():
    cert = pdf.PrintedCertificate(
        number="IKMA/2024/000010",
        recipient_name="Siti Rahmawati",
        program_title="Bimtek Wirausaha Baru IKM Batik",
        competency_units=[(f"BTK.{i:02d}", "Membatik tulis dengan canting") for i in range(25)],
        hours=40,
        start_date=date(2024, 9, 3),
        end_date=date(2024, 9, 7),
        issued_on=date(2024, 9, 8),
        partner="Yayasan Batik Indonesia",
        verification_url="https://sertifikat.example.id/verify/abc",
    )
    fit = pdf.fit_for(cert)
    assert (fit.unit_columns, fit.unit_size) != (1, pdf.UNIT_STEPS[0][1])  # would not fit
    short = dataclasses.replace(cert, competency_units=cert.competency_units[:2])
    assert pdf.fit_for(short).unit_size == 10
    document = pdf.render(cert)
    assert len(pypdf.PdfReader(io.BytesIO(document)).pages) == 1
    text = pypdf.PdfReader(io.BytesIO(document)).pages[0].extract_text()
    assert "BTK.24" in text and "Siti Rahmawati" in text
