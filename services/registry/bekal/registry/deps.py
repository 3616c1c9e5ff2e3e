"""Dependency aliases for the registry's routers: the unit of work, settings, who is asking."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bekal.registry.settings import RegistrySettings
from bekal.shared.auth import CurrentPrincipal, Ministry, Principal, Role, require
from bekal.shared.deps import SessionDep as SessionDep  # re-exported for the routers


# Dependencies are coroutines: FastAPI runs a plain function in a worker thread, a hand-off
# that cost more than the function on every request.
async def _settings(request: Request) -> RegistrySettings:
    settings: RegistrySettings = request.app.state.settings
    return settings


SettingsDep = Annotated[RegistrySettings, Depends(_settings)]

# Anyone signed in, of either ministry: facilities are not personal data.
AnyPrincipal = CurrentPrincipal
# The national register's administrators; the staff pages admit by the same rule (web/).
ADMIN_MINISTRY = Ministry.CORRECTIONS
ADMIN_ROLES: tuple[str, ...] = (Role.REGISTRY_ADMIN,)
RegistryAdmin = Annotated[Principal, require(ministry=ADMIN_MINISTRY, roles=ADMIN_ROLES)]
# Inmate data stays on the corrections side: national admins and facility staff only. The
# staff pages admit by the same rule (web/).
STAFF_MINISTRY = Ministry.CORRECTIONS
STAFF_ROLES: tuple[str, ...] = (Role.REGISTRY_ADMIN, Role.FACILITY_OFFICER)
CorrectionsStaff = Annotated[Principal, require(ministry=STAFF_MINISTRY, roles=STAFF_ROLES)]
