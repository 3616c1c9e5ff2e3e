"""Open Badges 3.0's own rules for the credential, one test per rule, and its second proof
format (an embedded Data Integrity proof, eddsa-rdfc-2022) checked with pyld, base58 and
cryptography, never with the service's own code path."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import base58
import jwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bekal.certification import domain, proofs
from bekal.certification.domain import Competency
from bekal.certification.services.keys import Issuer, did_document
from bekal.certification.signing import CertificateSigner, b64url_decode, verify_credential
from tests.support.certification import (
    jsonld_loader,
    multikey_public_key,
    published_contexts,
    rdfc_canonical,
    verify_data_integrity,
)

BASE_URL = "https://sertifikat.example.id"
DID = "did:web:sertifikat.example.id"
CONTEXT_URL = f"{BASE_URL}/contexts/sertifikat-v1.jsonld"
NOW = datetime(2024, 9, 8, 3, 0, tzinfo=UTC)


def _credential(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "certificate_id": uuid.UUID("00000000-0000-4000-8000-000000000001"),
        "number": "IKMA/2024/000001",
        "issuer_id": DID,
        "recipient_name": "Ma\u2019ruf Hidayat",
        "salt": "0123456789abcdef",
        "program_id": uuid.UUID("00000000-0000-4000-8000-0000000000aa"),
        "program_code": "WUB-BATIK",
        "program_title": "Bimtek Wirausaha Baru IKM Batik",
        "sector": "batik",
        "competency_units": [Competency("BTK.01", "Membatik tulis")],
        "hours": 40,
        "start_date": datetime(2024, 9, 3).date(),
        "end_date": datetime(2024, 9, 7).date(),
        "issued_at": datetime(2024, 9, 7, 18, 30, tzinfo=UTC),
        "partner": "Yayasan Batik Indonesia",
        "status": domain.status_entry(list_url=f"{BASE_URL}/status-lists/1", index=4242),
        "verification_url": f"{BASE_URL}/verify/abc",
        "context_url": CONTEXT_URL,
    }
    values.update(overrides)
    return domain.open_badge_credential(**values)


@pytest.fixture(scope="module")
def signer() -> CertificateSigner:
    return CertificateSigner(Ed25519PrivateKey.generate())


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


def _loader() -> Any:
    # The test's own loader: the published contexts as the package keeps them, and ours as
    # the service serves it (the file), nothing from the network.
    documents = published_contexts()
    documents[CONTEXT_URL] = json.loads(
        (proofs.CONTEXTS_DIR / "sertifikat-v1.jsonld").read_text("utf-8")
    )
    return jsonld_loader(documents)


# --- 8.2.3 the JOSE header ---------------------------------------------------------------------


def test_jose_header_has_only_the_headers_open_badges_allows(signer):
    # "Additional JOSE Headers are NOT allowed": alg, kid, jwk, typ only (no cty).
    header, _ = _parts(signer.sign_open_badge(_credential(), issuer_id=DID))
    assert set(header) <= {"alg", "kid", "jwk", "typ"}
    assert "kid" in header or "jwk" in header  # one of them MUST be there


def test_jose_header_typ_is_jwt(signer):
    # "typ: If present, MUST be set to 'JWT'" (VC-JOSE-COSE only recommends vc+jwt).
    header, _ = _parts(signer.sign_open_badge(_credential(), issuer_id=DID))
    assert header["typ"] == "JWT"


def test_jose_header_kid_is_a_uri_dereferenced_to_the_public_jwk(signer):
    header, _ = _parts(signer.sign_open_badge(_credential(), issuer_id=DID))
    assert header["kid"] == f"{DID}#{signer.kid}"
    document = did_document(Issuer(signer=signer, public_base_url=BASE_URL), [dict(signer.jwk)])
    (method,) = [m for m in document["verificationMethod"] if m["id"] == header["kid"]]
    assert header["kid"] in document["assertionMethod"]
    key = jwt.PyJWK(method["publicKeyJwk"], algorithm="EdDSA")
    assert verify_credential(signer.sign_open_badge(_credential(), issuer_id=DID), key.key)


def test_the_published_jwk_never_contains_the_private_d(signer):
    # "The JWK MUST never contain 'd'".
    document = did_document(Issuer(signer=signer, public_base_url=BASE_URL), [dict(signer.jwk)])
    assert "d" not in signer.jwk
    assert all("d" not in m.get("publicKeyJwk", {}) for m in document["verificationMethod"])


def test_alg_is_a_registered_signature_algorithm_and_verification_refuses_others(signer):
    # alg: EdDSA (RFC 8037); the README says why not RS256. A verifier accepts only the
    # algorithm of the published key: no "none", no HMAC with the public key as secret.
    token = signer.sign_open_badge(_credential(), issuer_id=DID)
    assert _parts(token)[0]["alg"] == "EdDSA"
    _, payload, _ = token.split(".")
    none_header = jwt.utils.base64url_encode(b'{"alg":"none"}').decode()
    unsigned = f"{none_header}.{payload}."
    with pytest.raises(Exception, match="does not verify"):
        verify_credential(unsigned, signer.public_key)


# --- 8.2.4 the JWT payload's registered claims -------------------------------------------------


def test_iss_is_issuer_id(signer):
    _, payload = _parts(signer.sign_open_badge(_credential(), issuer_id=DID))
    assert payload["iss"] == payload["issuer"]["id"] == DID


def test_jti_is_the_credential_id(signer):
    _, payload = _parts(signer.sign_open_badge(_credential(), issuer_id=DID))
    assert payload["jti"] == payload["id"] == "urn:uuid:00000000-0000-4000-8000-000000000001"


def test_nbf_is_valid_from(signer):
    _, payload = _parts(signer.sign_open_badge(_credential(), issuer_id=DID))
    assert payload["validFrom"] == "2024-09-07T18:30:00Z"
    assert payload["nbf"] == int(datetime(2024, 9, 7, 18, 30, tzinfo=UTC).timestamp())


def test_sub_is_credential_subject_id_and_names_nobody(signer):
    _, payload = _parts(signer.sign_open_badge(_credential(), issuer_id=DID))
    assert payload["sub"] == payload["credentialSubject"]["id"]
    assert payload["sub"].startswith("urn:uuid:")
    other = _credential(certificate_id=uuid.uuid4())
    assert other["sub"] != payload["sub"]  # a subject id per certificate, not per person


def test_no_exp_without_valid_until(signer):
    _, payload = _parts(signer.sign_open_badge(_credential(), issuer_id=DID))
    assert "exp" not in payload and "validUntil" not in payload


# --- 8.2.6 what a verifier checks -----------------------------------------------------------


def test_a_credential_whose_claims_agree_passes():
    domain.check_open_badge_claims(_credential(), now=NOW)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda c: c.update(iss="did:web:lain.example"), "iss"),
        (lambda c: c.pop("iss"), "iss"),
        (lambda c: c.update(sub="urn:uuid:00000000-0000-4000-8000-00000000dead"), "sub"),
        (lambda c: c.pop("sub"), "sub"),
        (lambda c: c.update(nbf=c["nbf"] + 1), "nbf"),
        (lambda c: c.pop("nbf"), "nbf"),
        (lambda c: c.update(jti="urn:uuid:00000000-0000-4000-8000-000000000002"), "jti"),
        (lambda c: c.pop("jti"), "jti"),
        (lambda c: c.update(exp=c["nbf"] + 10), "exp"),
    ],
)
def test_a_registered_claim_that_disagrees_makes_the_credential_not_valid(change, error):
    credential = _credential()
    change(credential)
    with pytest.raises(domain.OpenBadgeClaimError, match=error):
        domain.check_open_badge_claims(credential, now=NOW)


def test_a_credential_before_its_valid_from_is_not_valid():
    with pytest.raises(domain.OpenBadgeClaimError, match="not come"):
        domain.check_open_badge_claims(_credential(), now=datetime(2024, 9, 7, tzinfo=UTC))


def test_an_expired_credential_is_not_valid():
    credential = _credential()
    until = datetime(2024, 9, 8, tzinfo=UTC)
    credential["validUntil"] = "2024-09-08T00:00:00Z"
    credential["exp"] = int(until.timestamp())
    domain.check_open_badge_claims(credential, now=until - timedelta(seconds=1))
    with pytest.raises(domain.OpenBadgeClaimError, match="expired"):
        domain.check_open_badge_claims(credential, now=until)


def test_credentials_issued_before_these_rules_still_pass_where_they_agree():
    earlier = _credential()
    del earlier["sub"], earlier["nbf"], earlier["credentialSubject"]["id"]
    earlier["iat"] = 1
    domain.check_open_badge_claims(earlier, now=NOW, strict=False)
    with pytest.raises(domain.OpenBadgeClaimError):
        domain.check_open_badge_claims(earlier, now=NOW)
    earlier["iss"] = "did:web:lain.example"
    with pytest.raises(domain.OpenBadgeClaimError, match="iss"):
        domain.check_open_badge_claims(earlier, now=NOW, strict=False)


# --- contexts: OB 3.0.3, ours, from the package ----------------------------------------------


def test_the_credential_uses_the_ob_3_0_3_context_and_ours():
    assert _credential()["@context"] == [
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
        CONTEXT_URL,
    ]


def test_packaged_contexts_are_the_published_files_named_in_sources():
    sources = (proofs.CONTEXTS_DIR / "SOURCES.md").read_text("utf-8")
    for filename in ("credentials-v2.jsonld", "ob-v3p0-context-3.0.3.json"):
        digest = hashlib.sha256((proofs.CONTEXTS_DIR / filename).read_bytes()).hexdigest()
        assert re.search(rf"`{re.escape(filename)}`.*SHA-256 `{digest}`", sources), filename


def test_the_service_loader_serves_only_the_packaged_contexts():
    load = proofs.document_loader(bekal_context_url=CONTEXT_URL)
    assert load(CONTEXT_URL)["document"]["@context"]["certificateNumber"]
    assert load("https://www.w3.org/ns/credentials/v2")["documentUrl"].endswith("/v2")
    with pytest.raises(proofs.ContextNotServed):
        load("https://www.w3.org/ns/credentials/examples/v2")


def test_custom_fields_are_terms_of_our_context_not_issuer_dependent():
    canonical = rdfc_canonical(domain.unsecured_credential(_credential()), _loader())
    for term in ("certificateNumber", "hours", "competencyUnits", "competencyCode"):
        assert f"<urn:bekal:vocab:{term}>" in canonical, term
    assert '"IKMA/2024/000001"' in canonical and '"Membatik tulis"' in canonical
    # Nothing left to an issuer-dependent @vocab or resolved against a default base.
    assert "issuer-dependent" not in canonical and "example.org" not in canonical


# --- the Data Integrity proof (eddsa-rdfc-2022) ------------------------------------------------


def _secured(signer: CertificateSigner) -> dict[str, Any]:
    return proofs.add_proof(
        domain.unsecured_credential(_credential()),
        signer=signer,
        verification_method=f"{DID}#{proofs.multikey(signer.public_key)}",
        created=NOW,
        loader=proofs.document_loader(bekal_context_url=CONTEXT_URL),
    )


def test_data_integrity_proof_verifies_with_pyld_and_cryptography(signer):
    secured = _secured(signer)
    proof = secured["proof"]
    assert proof["type"] == "DataIntegrityProof" and proof["cryptosuite"] == "eddsa-rdfc-2022"
    assert proof["created"] == "2024-09-08T03:00:00Z"
    assert not set(domain.JWT_CLAIMS) & set(secured)  # the credential alone, no JWT claims
    # The key as the did:web document publishes it: a Multikey named by the proof.
    document = did_document(Issuer(signer=signer, public_base_url=BASE_URL), [dict(signer.jwk)])
    (method,) = [
        m for m in document["verificationMethod"] if m["id"] == proof["verificationMethod"]
    ]
    assert method["type"] == "Multikey" and method["id"] in document["assertionMethod"]
    verify_data_integrity(secured, multikey_public_key(method["publicKeyMultibase"]), _loader())


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(certificateNumber="IKMA/2024/000002"),
        lambda d: d["credentialSubject"].update(hours=400),
        lambda d: d["credentialSubject"]["competencyUnits"][0].update(title="Mencap batik"),
        lambda d: d["credentialSubject"]["achievement"].update(name="Bimtek Lain"),
        lambda d: d["proof"].update(created="2024-09-09T03:00:00Z"),
    ],
)
def test_a_changed_field_fails_data_integrity_verification(signer, change):
    secured = _secured(signer)
    changed = copy.deepcopy(secured)
    change(changed)
    with pytest.raises(InvalidSignature):
        verify_data_integrity(changed, signer.public_key, _loader())
    assert not proofs.verify_proof(changed, signer.public_key, loader=_loader())
    assert proofs.verify_proof(secured, signer.public_key, loader=_loader())


def test_another_key_does_not_verify_the_proof(signer):
    with pytest.raises(InvalidSignature):
        verify_data_integrity(
            _secured(signer), Ed25519PrivateKey.generate().public_key(), _loader()
        )


# The specification's own test vector (vc-di-eddsa, TestVectors/eddsa-rdfc-2022 and
# TestVectors/keyPair.json, w3c/vc-di-eddsa commit abb673eb9df673e24a8eaf939337de74759b5f8d):
# with its key and proof options our signer gives its proofValue, byte for byte.
_VECTOR_KEY = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
_VECTOR_PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
_VECTOR_PROOF_VALUE = (
    "z2YwC8z3ap7yx1nZYCg4L3j3ApHsF8kgPdSb5xoS1VR7vPG3F561B52hYnQF9iseabecm3ijx4K1FBTQsCZahKZme"
)
_VECTOR_CREDENTIAL = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://www.w3.org/ns/credentials/examples/v2",
    ],
    "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
    "type": ["VerifiableCredential", "AlumniCredential"],
    "name": "Alumni Credential",
    "description": "A minimum viable example of an Alumni Credential.",
    "issuer": "https://vc.example/issuers/5678",
    "validFrom": "2023-01-01T00:00:00Z",
    "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"},
}
# w3c/vc-data-model, contexts/credentials/examples/v2 (commit 80cefeec328f...).
_EXAMPLES_CONTEXT = {"@context": {"@vocab": "https://www.w3.org/ns/credentials/examples#"}}


def test_the_signer_reproduces_the_specification_test_vector():
    secret = base58.b58decode(_VECTOR_KEY[1:])
    assert secret[:2] == b"\x80\x26"  # multicodec ed25519-priv
    signer = CertificateSigner(Ed25519PrivateKey.from_private_bytes(secret[2:]))
    assert proofs.multikey(signer.public_key) == _VECTOR_PUBLIC
    documents = published_contexts()
    documents["https://www.w3.org/ns/credentials/examples/v2"] = _EXAMPLES_CONTEXT
    loader = jsonld_loader(documents)
    secured = proofs.add_proof(
        _VECTOR_CREDENTIAL,
        signer=signer,
        verification_method=f"did:key:{_VECTOR_PUBLIC}#{_VECTOR_PUBLIC}",
        created=datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC),
        loader=loader,
    )
    assert secured["proof"]["proofValue"] == _VECTOR_PROOF_VALUE
    verify_data_integrity(secured, multikey_public_key(_VECTOR_PUBLIC), loader)


def test_multikey_round_trip(signer):
    value = proofs.multikey(signer.public_key)
    assert value.startswith("z6Mk")
    assert proofs.public_key_from_multikey(value) == signer.public_key
    assert multikey_public_key(value) == signer.public_key


# --- the status list credential -------------------------------------------------------------


def test_status_list_credential_carries_valid_until_and_exp():
    credential = domain.status_list_credential(
        list_url=f"{BASE_URL}/status-lists/1",
        issuer_id=DID,
        encoded_list=domain.encode_status_list([]),
        now=NOW,
    )
    assert credential["validFrom"] == "2024-09-08T03:00:00Z"
    assert credential["validUntil"] == "2024-09-09T03:00:00Z"
    assert credential["exp"] == int((NOW + domain.STATUS_LIST_VALIDITY).timestamp())
