"""Tables every service has for reliable messaging: outbox, inbox and dead letters."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bekal.shared.db import GUID, UTCDateTime, new_metadata, utcnow


class MessagingBase(DeclarativeBase):
    metadata = new_metadata()


class OutboxMessage(MessagingBase):
    """An event written in the same transaction as the state change it reports.

    The relay publishes rows in ``seq`` order and marks them sent; the event id travels in the
    ``ce_id`` header so consumers can drop duplicates. Sent rows stay (a person's data report
    lists them) but leave the relay's index: it holds the unsent rows only.
    """

    __tablename__ = "outbox"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(GUID(), unique=True)
    topic: Mapped[str] = mapped_column(String(200))
    aggregate_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)
    traceparent: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "ix_outbox_pending",
            "seq",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
    )


class InboxMessage(MessagingBase):
    """An event already handled by a consumer group: its effect committed with this row."""

    __tablename__ = "inbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    consumer_group: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(200))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("consumer_group", "event_id", name="uq_inbox_group_event"),)


class DeadLetter(MessagingBase):
    """A record that could not be handled, as sent to the dead-letter topic (kept for operators)."""

    __tablename__ = "dead_letters"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    consumer_group: Mapped[str] = mapped_column(String(200), index=True)
    topic: Mapped[str] = mapped_column(String(200))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[str] = mapped_column(Text)  # JSON object of header name -> text
    value: Mapped[str | None] = mapped_column(Text)
    event_id: Mapped[str | None] = mapped_column(String(200))
    event_type: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(100))
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retried_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @classmethod
    def naming(cls, text: str) -> ColumnElement[bool]:
        """Dead letters whose record holds ``text`` in its value, key or headers: an erasure
        leaves none naming the person (the value may hold their name, facility and dates; a
        record that did not parse may name them only in its key or its subject header)."""
        return (
            cls.value.contains(text, autoescape=True)
            | cls.key.contains(text, autoescape=True)
            | cls.headers.contains(text, autoescape=True)
        )
