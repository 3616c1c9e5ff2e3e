"""What the certification tests share: its settings and the completions it consumes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from bekal.certification.settings import CertificationSettings
from bekal.shared.broker import EmbeddedBroker
from bekal.shared.events.catalogue import CompetencyUnit, ParticipantCompleted
from bekal.shared.settings import Settings


def completed(
    *,
    session_id: uuid.UUID | None = None,
    name: str = "Siti Rahmawati",
    end_date: date = date(2024, 9, 7),
) -> ParticipantCompleted:
    return ParticipantCompleted(
        enrollment_id=uuid.uuid4(),
        session_id=session_id or uuid.uuid4(),
        participant_id=uuid.uuid4(),
        participant_name=name,
        program_id=uuid.uuid4(),
        program_code="WUB-BATIK",
        program_title="Bimtek Wirausaha Baru IKM Batik",
        sector="batik",
        partner="Yayasan Batik Indonesia",
        competency_units=[
            CompetencyUnit(code="BTK.01", title="Membatik tulis"),
            CompetencyUnit(code="BTK.02", title="Membatik cap"),
        ],
        hours=40,
        start_date=end_date - timedelta(days=4),
        end_date=end_date,
        attendance_share=1.0,
    )


def certification_settings(
    make_settings: Callable[..., Settings],
    database_url: str,
    broker: EmbeddedBroker,
    tmp_path: Path,
    **overrides: object,
) -> CertificationSettings:
    base = make_settings("certification", database_url, broker, **overrides)
    return CertificationSettings(
        **base.model_dump(), certificate_signing_key_file=tmp_path / "keys" / "certificate.pem"
    )
