"""Dependencies of the training routes: the unit of work and who may call what."""

from __future__ import annotations

from typing import Annotated

from bekal.shared.auth import Ministry, Principal, Role, require
from bekal.shared.deps import SessionDep as SessionDep  # re-exported for the routers

# Everything here is the industry side's: corrections staff read their own registry instead.
TrainingReader = Annotated[
    Principal,
    require(ministry=Ministry.INDUSTRY, roles=(Role.TRAINING_ADMIN, Role.TRAINING_OFFICER)),
]
TrainingAdmin = Annotated[
    Principal, require(ministry=Ministry.INDUSTRY, roles=(Role.TRAINING_ADMIN,))
]
TrainingOfficer = Annotated[
    Principal,
    require(ministry=Ministry.INDUSTRY, roles=(Role.TRAINING_OFFICER, Role.TRAINING_ADMIN)),
]
# Graduates: checklists before release and follow-ups after it, mostly by field officers.
GraduateRecorder = Annotated[
    Principal,
    require(
        ministry=Ministry.INDUSTRY,
        roles=(Role.FIELD_OFFICER, Role.TRAINING_OFFICER, Role.TRAINING_ADMIN),
    ),
]
FollowUpRecorder = Annotated[
    Principal,
    require(ministry=Ministry.INDUSTRY, roles=(Role.FIELD_OFFICER, Role.TRAINING_ADMIN)),
]
