"""What the registry's pages share: their templates and navigation, who may open them, the
names people read for the registry's codes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

from bekal.registry.deps import ADMIN_MINISTRY, ADMIN_ROLES, STAFF_MINISTRY, STAFF_ROLES
from bekal.shared.auth import Principal
from bekal.shared.web import STAFF, NavItem, Pages, page_require

PAGE_SIZE = 25
# The API's rules: corrections staff (CorrectionsStaff) and the register's admins (RegistryAdmin).
Staff = Annotated[Principal, page_require(ministry=STAFF_MINISTRY, roles=STAFF_ROLES)]
Admin = Annotated[Principal, page_require(ministry=ADMIN_MINISTRY, roles=ADMIN_ROLES)]


def _staff(label: str, href: str, **more: Any) -> NavItem:
    return NavItem(label, href, ministry=STAFF_MINISTRY, roles=STAFF_ROLES, **more)


def _admin(label: str, href: str, **more: Any) -> NavItem:
    return NavItem(label, href, ministry=ADMIN_MINISTRY, roles=ADMIN_ROLES, **more)


pages = Pages(
    Path(__file__).parent / "templates",
    nav=[
        _staff("Warga binaan", f"{STAFF}/warga-binaan"),
        _staff("Daftarkan penerimaan", f"{STAFF}/penerimaan"),
        # A facility's candidates live under its address, in this section.
        _staff(
            "Kandidat pelatihan", f"{STAFF}/kandidat", also=(rf"{STAFF}/fasilitas/[^/]+/kandidat",)
        ),
        _admin(
            "Fasilitas", f"{STAFF}/fasilitas", not_under=(rf"{STAFF}/fasilitas/[^/]+/kandidat",)
        ),
        _admin("Impor SDP", f"{STAFF}/impor"),
        _admin("Jejak audit", f"{STAFF}/audit"),
    ],
)


def blank_to_none(form: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {name: (str(form.get(name) or "").strip() or None) for name in names}


def tanggal(value: date | None) -> str:
    return pages.env.filters["tanggal"](value)


def waktu(value: datetime | None) -> str:
    """A moment as people here write it, in UTC (the registry's clock): 5 Desember 2026 10.04."""
    if value is None:
        return "—"
    return f"{tanggal(value)} {value:%H.%M} UTC"
