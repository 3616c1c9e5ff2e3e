"""Dependencies of the reporting API as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from bekal.shared.auth import Ministry, Principal, Role, require
from bekal.shared.deps import SessionDep as SessionDep  # re-exported for the routers

# Both ministries read reports: these roles of either side may.
READER_ROLES: tuple[str, ...] = (
    Role.REPORTING_VIEWER,
    Role.REGISTRY_ADMIN,
    Role.TRAINING_ADMIN,
    Role.CERTIFICATION_ADMIN,
)

# Detail (one facility, one session) is for the national administrators of either side;
# reporting viewers read aggregates by province, program, sector, sex and year.
DETAIL_ROLES: tuple[str, ...] = (
    Role.REGISTRY_ADMIN,
    Role.TRAINING_ADMIN,
    Role.CERTIFICATION_ADMIN,
)
# Targets are set by the industry ministry's administrators.
TARGET_EDITOR_ROLES: tuple[str, ...] = (Role.TRAINING_ADMIN,)


ReportReader = Annotated[Principal, require(roles=READER_ROLES)]
TargetEditor = Annotated[Principal, require(ministry=Ministry.INDUSTRY, roles=TARGET_EDITOR_ROLES)]
