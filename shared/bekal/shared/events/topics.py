"""Topic names, one per aggregate, each owned (written) by exactly one service, and the settings
every topic has in production (the Strimzi resources, docker-compose and ``ensure_topics`` all
read them from here)."""

from __future__ import annotations

from dataclasses import dataclass

REGISTRY_FACILITIES = "registry.facilities"
REGISTRY_INMATES = "registry.inmates"
REGISTRY_PERSON_KEYS = "registry.person-keys"
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
    # Further topic-level configs (a compacted topic's compaction bounds), as Kafka spells them.
    extra: tuple[tuple[str, str], ...] = ()

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
            **dict(self.extra),
        }


# Event topics keep their whole history (retention.ms=-1): projections are rebuilt from offset 0,
# and a new consumer on the other ministry's side starts from the beginning. None is compacted,
# because none is keyed state: each key carries a sequence of different events whose earlier
# ones still count (a facility's FacilityRegistered before its FacilityUpdated, an enrolment's
# ParticipantEnrolled before its outcome, every ProgramPublished version that sessions name by
# program_version), so keeping only the latest record per key would change what a replay builds.
EVENT_TOPIC = TopicSettings(retention_ms=-1, cleanup_policy="delete")
# The person keys (crypto-shredding, bekal.shared.events.personal): compacted, so only each
# person's latest record stays, and an erasure's tombstone makes the key itself go. The cleaner
# must run within a bound: max.compaction.lag.ms makes a record (the key a tombstone replaces)
# eligible for compaction 24 hours after it was written at the latest, whatever the dirty
# ratio, and Kafka rolls the active segment for it; the cleaner then removes it on its next
# pass (log.cleaner.backoff.ms, 15 s). The tombstone itself goes delete.retention.ms (1 hour)
# after that: the readers hold keys in memory only and read the topic from the beginning when
# they start, so none needs to see a tombstone to forget a key it never loaded. Worst case for
# a key to leave the broker: about 25 hours, inside UU PDP's 3 x 24 hours.
PERSON_KEY_COMPACTION_LAG_MS = 24 * 3600 * 1000
PERSON_KEY_TOPIC = TopicSettings(
    retention_ms=-1,
    cleanup_policy="compact",
    extra=(
        ("max.compaction.lag.ms", str(PERSON_KEY_COMPACTION_LAG_MS)),
        ("min.cleanable.dirty.ratio", "0.1"),
        ("segment.ms", str(3600 * 1000)),
        ("delete.retention.ms", str(3600 * 1000)),
    ),
)
DEAD_LETTER_TOPIC = TopicSettings(retention_ms=DEAD_LETTER_RETENTION_MS, cleanup_policy="delete")


@dataclass(frozen=True)
class Topic:
    name: str
    owner: str  # the only service that may write to it
    ministry: str  # corrections or industry
    description: str
    settings: TopicSettings = EVENT_TOPIC
    # Services that read it outside a consumer group (the person keys: training, certification).
    readers: tuple[str, ...] = ()


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
        REGISTRY_PERSON_KEYS,
        "registry",
        "corrections",
        "Each shared person's data key, which seals the personal fields of their events; "
        "erasure leaves a tombstone. Compacted; read only by the services that need names",
        settings=PERSON_KEY_TOPIC,
        readers=("training", "certification"),
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


def read_by(service: str) -> list[str]:
    """Topics ``service`` reads outside its consumer group (the person keys)."""
    return [t.name for t in TOPICS if service in t.readers]
