"""Corrections staff over HTTP: a facility and consenting inmates, against a running registry."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from bekal.shared.auth import mint_token
from bekal.shared.settings import Settings


class RegistryClient:
    def __init__(self, base_url: str, settings: Settings) -> None:
        token = mint_token(
            settings, subject="kanwil-admin", ministry="corrections", roles=["registry_admin"]
        )
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        self.tag = uuid.uuid4().hex[:6].upper()
        self.created = 0

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()

    async def facility(self) -> str:
        r = await self.http.post(
            "/api/v1/facilities",
            json={
                "code": f"LP-UJI-{self.tag}",
                "name": "Lapas Kelas IIA Uji",
                "kind": "lapas",
                "facility_class": "IIA",
                "province": "Jawa Barat",
                "regional_office": "Kanwil Jawa Barat",
                "capacity": 900,
                "active": True,
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def consenting_inmate(self, facility_id: str) -> httpx.Response:
        """Register one inmate who consents (so ``inmate.shared`` goes to the industry side)."""
        n = self.created
        self.created += 1
        return await self.http.post(
            "/api/v1/inmates",
            json={
                "registration_number": f"REL-{self.tag}-{n:06d}",
                "full_name": f"Warga Binaan Uji {n:06d}",
                "nik": f"3273{int(self.tag, 16) % 10**6:06d}{n:06d}",
                "sex": "M" if n % 2 else "F",
                "date_of_birth": "1990-05-17",
                "facility_id": facility_id,
                "admission_date": "2024-02-01",
                "expected_release_date": "2027-02-01",
                "consent": {"training": True, "data_sharing": True},
            },
        )

    @staticmethod
    def ok(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 201, f"{response.status_code} {response.text[:500]}"
        body: dict[str, Any] = response.json()
        return body
