"""Topic names, one per aggregate, each owned (written) by exactly one service."""

from __future__ import annotations

from dataclasses import dataclass

REGISTRY_FACILITIES = "registry.facilities"
REGISTRY_INMATES = "registry.inmates"
TRAINING_PROGRAMS = "training.programs"
TRAINING_SESSIONS = "training.sessions"
TRAINING_ENROLLMENTS = "training.enrollments"
CERTIFICATION_CERTIFICATES = "certification.certificates"


@dataclass(frozen=True)
class Topic:
    name: str
    owner: str  # the only service that may write to it
    ministry: str  # corrections or industry
    description: str


TOPICS: tuple[Topic, ...] = (
    Topic(
        REGISTRY_FACILITIES,
        "registry",
        "corrections",
        "Facilities (lapas, rutan, LPKA) and their changes",
    ),
    Topic(
        REGISTRY_INMATES,
        "registry",
        "corrections",
        "Consenting inmates shared with the industry side: registration, movements, release",
    ),
    Topic(
        TRAINING_PROGRAMS, "training", "industry", "Course designs (programs) and their versions"
    ),
    Topic(
        TRAINING_SESSIONS,
        "training",
        "industry",
        "Sessions: a program held at a facility on given dates",
    ),
    Topic(
        TRAINING_ENROLLMENTS,
        "training",
        "industry",
        "Enrolments and their outcomes: enrolled, withdrawn, completed, not completed",
    ),
    Topic(
        CERTIFICATION_CERTIFICATES, "certification", "industry", "Completion certificates issued"
    ),
)

SOURCES = {
    "registry": "/corrections/registry",
    "training": "/industry/training",
    "certification": "/industry/certification",
    "reporting": "/industry/reporting",
}


def dead_letter_topic(consumer_group: str) -> str:
    """Each consumer group has its own dead-letter topic, so an operator knows whose it is."""
    return f"{consumer_group}.dlq"


def owned_by(service: str) -> list[str]:
    return [t.name for t in TOPICS if t.owner == service]
