"""Dependencies of the training routes: the unit of work and who may call what."""

from __future__ import annotations

from typing import Annotated

from bekal.shared.auth import Ministry, Principal, Role, require
from bekal.shared.deps import SessionDep as SessionDep  # re-exported for the routers

# Everything here is the industry side's: corrections staff read their own registry instead.
# The staff pages (bekal.training.web) apply the same rules through these names.
MINISTRY = Ministry.INDUSTRY
READER_ROLES: tuple[str, ...] = (Role.TRAINING_ADMIN, Role.TRAINING_OFFICER)
ADMIN_ROLES: tuple[str, ...] = (Role.TRAINING_ADMIN,)
OFFICER_ROLES: tuple[str, ...] = (Role.TRAINING_OFFICER, Role.TRAINING_ADMIN)
# Graduates: checklists before release and follow-ups after it, mostly by field officers.
GRADUATE_ROLES: tuple[str, ...] = (Role.FIELD_OFFICER, Role.TRAINING_OFFICER, Role.TRAINING_ADMIN)
FOLLOW_UP_ROLES: tuple[str, ...] = (Role.FIELD_OFFICER, Role.TRAINING_ADMIN)

TrainingReader = Annotated[Principal, require(ministry=MINISTRY, roles=READER_ROLES)]
TrainingAdmin = Annotated[Principal, require(ministry=MINISTRY, roles=ADMIN_ROLES)]
TrainingOfficer = Annotated[Principal, require(ministry=MINISTRY, roles=OFFICER_ROLES)]
GraduateRecorder = Annotated[Principal, require(ministry=MINISTRY, roles=GRADUATE_ROLES)]
FollowUpRecorder = Annotated[Principal, require(ministry=MINISTRY, roles=FOLLOW_UP_ROLES)]
