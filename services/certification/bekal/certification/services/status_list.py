"""The Bitstring Status List: places for new certificates, and the signed list itself."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification import domain
from bekal.certification.models import StatusEntry
from bekal.certification.services.keys import Issuer
from bekal.shared.db import utcnow
from bekal.shared.problems import NotFound


async def allocate_status_entry(*, session: AsyncSession) -> tuple[int, int]:
    """A random free place in the open status list (a new list once it is half full)."""
    (place,) = await allocate_status_entries(session=session, count=1)
    return place


async def allocate_status_entries(*, session: AsyncSession, count: int) -> list[tuple[int, int]]:
    """``count`` random free places, taken in the open status list until it is half full, then
    in the next one; in the order drawn, so that the order of issue says nothing of the index.

    A statement reads the open list, one checks each round of random candidates, one takes them
    all. A concurrent issuer taking one of them first fails the insert: the savepoint undoes it
    and the places are drawn again.
    """
    for _ in range(8):
        head = (
            await session.execute(
                select(StatusEntry.status_list, func.count())
                .where(
                    StatusEntry.status_list
                    == select(func.max(StatusEntry.status_list)).scalar_subquery()
                )
                .group_by(StatusEntry.status_list)
            )
        ).first()
        current, used = (head[0], head[1]) if head is not None else (1, 0)
        places: list[tuple[int, int]] = []
        while len(places) < count:
            if used >= domain.STATUS_LIST_FILL_LIMIT:
                current, used = current + 1, 0
            wanted = min(count - len(places), domain.STATUS_LIST_FILL_LIMIT - used)
            places += [(current, i) for i in await _free_indexes(session, current, wanted)]
            used += wanted
        try:
            async with session.begin_nested():
                await session.execute(
                    insert(StatusEntry),
                    [
                        {"status_list": status_list, "list_index": index, "revoked": False}
                        for status_list, index in places
                    ],
                )
        except IntegrityError:
            continue  # taken by a concurrent issuer a moment ago
        return places
    raise RuntimeError("no free status list places found")  # pragma: no cover


async def _free_indexes(session: AsyncSession, status_list: int, count: int) -> list[int]:
    """``count`` distinct random indexes not yet taken in ``status_list``, in the order drawn."""
    chosen: list[int] = []
    seen: set[int] = set()
    for _ in range(64):
        candidates: list[int] = []
        while len(chosen) + len(candidates) < count:
            index = secrets.randbelow(domain.STATUS_LIST_SIZE)
            if index not in seen:
                seen.add(index)
                candidates.append(index)
        taken = set(
            await session.scalars(
                select(StatusEntry.list_index).where(
                    StatusEntry.status_list == status_list,
                    StatusEntry.list_index.in_(candidates),
                )
            )
        )
        chosen += [i for i in candidates if i not in taken]
        if len(chosen) == count:
            return chosen
    raise RuntimeError(f"no free index found in status list {status_list}")  # pragma: no cover


async def status_list_credential(
    *, session: AsyncSession, status_list: int, issuer: Issuer, now: datetime | None = None
) -> str:
    """The signed BitstringStatusListCredential of one list (vc+jwt), as of now."""
    if status_list != 1:
        in_use = await session.scalar(
            select(StatusEntry.list_index).where(StatusEntry.status_list == status_list).limit(1)
        )
        if in_use is None:
            raise NotFound(f"Daftar status {status_list} tidak ada")
    revoked = await session.scalars(
        select(StatusEntry.list_index).where(
            StatusEntry.status_list == status_list, StatusEntry.revoked.is_(True)
        )
    )
    credential = domain.status_list_credential(
        list_url=issuer.status_list_url(status_list),
        issuer_id=issuer.did,
        encoded_list=domain.encode_status_list(revoked.all()),
        now=now or utcnow(),
    )
    return issuer.signer.sign_vc(credential, issuer_id=issuer.did)
