"""Topic names, one per aggregate, each owned (written) by exactly one service, and the settings
every topic has in production (the Strimzi resources, docker-compose and ``ensure_topics`` all
read them from here)."""

from __future__ import annotations

from dataclasses import dataclass

REGISTRY_FACILITIES = "registry.facilities"
REGISTRY_INMATES = "registry.inmates"
TRAINING_PROGRAMS = "training.programs"
TRAINING_SESSIONS = "training.sessions"
TRAINING_ENROLLMENTS = "training.enrollments"
CERTIFICATION_CERTIFICATES = "certification.certificates"


PARTITIONS = 3
# Production runs three brokers: every record is on three of them, and acks=all is answered only
# once two have it, so one broker may be lost (or restarted) without losing or refusing anything.
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2
DEAD_LETTER_SUFFIX = ".dlq"
DEAD_LETTER_RETENTION_MS = 30 * 24 * 3600 * 1000  # 30 days for an operator to look and retry


@dataclass(frozen=True)
class TopicSettings:
    """How a topic is created: partitions, replicas and its topic-level configuration."""

    retention_ms: int  # -1: kept for ever
    cleanup_policy: str  # "delete" (by retention) or "compact" (latest record per key)
    partitions: int = PARTITIONS
    replication_factor: int = REPLICATION_FACTOR
    min_insync_replicas: int = MIN_INSYNC_REPLICAS

    def config(self, replication_factor: int | None = None) -> dict[str, str]:
        """The topic configs, for ``replication_factor`` replicas (the production one if None).

        ``min.insync.replicas`` never exceeds the replicas a topic has: one broker (development,
        tests, docker-compose) has one replica, and a produce with acks=all needs only that one.
        """
        replicas = self.replication_factor if replication_factor is None else replication_factor
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "min.insync.replicas": str(max(1, min(self.min_insync_replicas, replicas))),
            # A replica that missed records never becomes leader: waiting beats losing events.
            "unclean.leader.election.enable": "false",
        }


# Event topics keep their whole history (retention.ms=-1): projections are rebuilt from offset 0,
# and a new consumer on the other ministry's side starts from the beginning. None is compacted,
# because none is keyed state: each key carries a sequence of different events whose earlier
# ones still count (a facility's FacilityRegistered before its FacilityUpdated, an enrolment's
# ParticipantEnrolled before its outcome, every ProgramPublished version that sessions name by
# program_version), so keeping only the latest record per key would change what a replay builds.
EVENT_TOPIC = TopicSettings(retention_ms=-1, cleanup_policy="delete")
DEAD_LETTER_TOPIC = TopicSettings(retention_ms=DEAD_LETTER_RETENTION_MS, cleanup_policy="delete")


@dataclass(frozen=True)
class Topic:
    name: str
    owner: str  # the only service that may write to it
    ministry: str  # corrections or industry
    description: str
    settings: TopicSettings = EVENT_TOPIC


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
    return f"{consumer_group}{DEAD_LETTER_SUFFIX}"


def topic_settings(name: str) -> TopicSettings:
    """The settings of a topic by its name (without a namespace prefix).

    A catalogue topic has its own, a dead-letter topic (``<group>.dlq``) the dead letters'; any
    other name (a benchmark's scratch topic) is treated as an event topic: kept and replicated.
    """
    for topic in TOPICS:
        if topic.name == name:
            return topic.settings
    if name.endswith(DEAD_LETTER_SUFFIX):
        return DEAD_LETTER_TOPIC
    return EVENT_TOPIC


def topic_config(name: str, replication_factor: int | None = None) -> dict[str, str]:
    """The topic configs ``name`` is created with, for ``replication_factor`` replicas."""
    return topic_settings(name).config(replication_factor)


def owned_by(service: str) -> list[str]:
    return [t.name for t in TOPICS if t.owner == service]
