"""The registry's settings: the shared ones plus the secret that keys the NIK and the cap of
the counts of the people list and the audit trail."""

from __future__ import annotations

from itertools import pairwise

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from bekal.shared.settings import Environment, Settings

DEV_PSEUDONYM_SECRET = "development-only-secret-change-me"
# 32 random bytes: what an HMAC-SHA256 key and the HKDF input must hold (`openssl rand -base64
# 48` gives 48). Fewer cannot be random enough, whatever the characters.
MIN_PSEUDONYM_SECRET_BYTES = 32
# Values found in this repository (the development default, docker-compose's local one) and
# words of a placeholder: a secret that holds one was copied, not generated.
KNOWN_PSEUDONYM_SECRETS = frozenset({DEV_PSEUDONYM_SECRET, "compose-local-pseudonym-secret"})
PLACEHOLDER_WORDS = ("change-me", "changeme", "example", "placeholder", "development-only")


def weak_secret(secret: str) -> str | None:
    """Why ``secret`` cannot be a production key, or None. Catches what is short or obviously
    not random (few characters, a pattern repeated, runs such as ``aaaa`` or ``abcdef``, a
    default or placeholder value); it cannot prove that a long value is random."""
    size = len(secret.encode())
    if secret in KNOWN_PSEUDONYM_SECRETS:
        return "it is a default or example value from the repository"
    if any(word in secret.lower() for word in PLACEHOLDER_WORDS):
        return "it is a placeholder, not a generated value"
    if size < MIN_PSEUDONYM_SECRET_BYTES:
        return f"it is {size} bytes; at least {MIN_PSEUDONYM_SECRET_BYTES} random bytes are needed"
    if len(set(secret)) < 8:
        return f"it uses only {len(set(secret))} different characters"
    for period in range(1, len(secret) // 2 + 1):
        if len(secret) % period == 0 and secret == secret[:period] * (len(secret) // period):
            return f"it repeats the same {period} characters"
    steps = [ord(b) - ord(a) for a, b in pairwise(secret)]
    if sum(abs(step) <= 1 for step in steps) > len(steps) // 2:
        return "it is mostly runs of the same or consecutive characters"
    return None


class RegistrySettings(Settings):
    # A refused secret must not be echoed into the log of a service that will not start.
    model_config = SettingsConfigDict(hide_input_in_errors=True)

    service_name: str = "registry"
    # Only the registry sees a NIK: it keeps the keyed hash and derives the pseudonymous
    # participant id with this; the other services only ever receive that id.
    pseudonym_secret: str = Field(
        default=DEV_PSEUDONYM_SECRET,
        description="Keyed-hash secret for identifiers that must not be readable in a dump (NIK); "
        "production: at least 32 random bytes (e.g. `openssl rand -base64 48`)",
    )
    # Counting every match of a common name at national volume (20,000 "Siti" among 300,000
    # people) costs each page more than the page itself; past this many the list says "more
    # than" (`count_capped` in the API, "lebih dari" on the staff page).
    list_count_limit: int = Field(
        default=1000,
        ge=1,
        description="The people list, search and the audit trail count at most this many; "
        "beyond it the total is reported as capped",
    )

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> RegistrySettings:
        # Development and tests keep the default (or any value): nothing real is keyed there.
        if self.environment is not Environment.PRODUCTION:
            return self
        reason = weak_secret(self.pseudonym_secret)
        if reason is not None:
            raise ValueError(
                f"PSEUDONYM_SECRET is too weak for production: {reason}. Set it to at least "
                f"{MIN_PSEUDONYM_SECRET_BYTES} random bytes, e.g. `openssl rand -base64 48`; "
                "it keys every NIK hash, so choose it once, before the first person is registered"
            )
        return self
