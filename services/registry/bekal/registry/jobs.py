"""Import jobs started over HTTP: run in the background, recovered when their process stopped."""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.registry.importer import (
    BadFile,
    ImportReport,
    LineError,
    audit_import,
    count_lines,
    run_import,
)
from bekal.registry.models import ImportJob
from bekal.shared.auth import Principal
from bekal.shared.db import Database, utcnow
from bekal.shared.idempotency import commit
from bekal.shared.pagination import Page, paginate, parse_utc
from bekal.shared.problems import NotFound

log = structlog.get_logger(__name__)

KEPT_ERRORS = 1000  # the job keeps the first bad (and skipped) lines; all of them are counted
# A job beats with each chunk (well under a second); one silent this long died with its process.
STALE_AFTER = timedelta(minutes=2)
UPLOAD_PREFIX = "bekal-registry-import-"
UNFINISHED = ("queued", "running")
INTERRUPTED = (
    "Impor terhenti karena layanan registri berhenti saat impor berjalan. Unggah berkas yang "
    "sama sekali lagi untuk menyelesaikannya: baris yang sudah masuk tidak berubah."
)


def new_upload(job_id: uuid.UUID) -> tuple[int, Path]:
    """An open temporary file for a job's upload, and its path.

    Named after the job, so the file (NIKs in clear) of a job cut off can be found and removed.
    """
    fd, name = tempfile.mkstemp(prefix=f"{UPLOAD_PREFIX}{job_id}-", suffix=".csv")
    return fd, Path(name)


def remove_upload(job_id: uuid.UUID) -> None:
    """The uploaded file of a job cut off (it holds NIKs in clear), if this host has it."""
    for leftover in Path(tempfile.gettempdir()).glob(f"{UPLOAD_PREFIX}{job_id}-*.csv"):
        leftover.unlink(missing_ok=True)


async def checked_upload(path: Path) -> int:
    """The upload's data lines, once the whole file is known to be UTF-8 text in lines of an
    export's size; BadEncoding (naming the line) if not, and then no job is made. Read in a
    thread: a large file takes seconds."""
    return await asyncio.to_thread(count_lines, path)


def queue_job(
    *,
    session: AsyncSession,
    job_id: uuid.UUID,
    total_lines: int,
    dry_run: bool,
    filename: str | None,
    principal: Principal,
) -> ImportJob:
    """The job's row, queued, for an upload ``checked_upload`` passed; the caller commits it
    before starting the job."""
    job = ImportJob(
        id=job_id,
        status="queued",
        dry_run=dry_run,
        filename=filename,
        total_lines=total_lines,
        processed_lines=0,
        created_count=0,
        unchanged_count=0,
        invalid_count=0,
        created_by=principal.subject,
        created_at=utcnow(),
        heartbeat_at=utcnow(),
    )
    session.add(job)
    return job


# How long a shutdown waits for a running job to reach the end of its chunk.
STOP_WAIT_SECONDS = 20.0


class _Stopping(Exception):
    """Raised between two chunks once the service is shutting down: the job ends there."""


def start_job(*, app: FastAPI, job: ImportJob, path: Path, principal: Principal) -> None:
    """Run a committed job in this process; ``stop_running_jobs`` ends it at shutdown."""
    tasks: dict[asyncio.Task[None], uuid.UUID] = app.state.__dict__.setdefault("import_tasks", {})
    stop: asyncio.Event = app.state.__dict__.setdefault("import_stop", asyncio.Event())
    task = asyncio.create_task(
        _run_job(
            app.state.db,
            job.id,
            path,
            secret=app.state.settings.pseudonym_secret,
            dry_run=job.dry_run,
            actor=principal.subject,
            roles=",".join(sorted(principal.roles)),
            stop=stop,
        )
    )
    tasks[task] = job.id
    task.add_done_callback(lambda done: tasks.pop(done, None))


async def get_job(*, session: AsyncSession, job_id: uuid.UUID) -> ImportJob:
    """A job as it stands; one whose beat stopped is recorded as interrupted there and then."""
    job = await session.get(ImportJob, job_id)
    if job is None:
        raise NotFound("Pekerjaan impor tidak ditemukan.")
    if job.status in UNFINISHED and _stale(job):
        # Its process stopped (another replica's, or this one's before a restart).
        job.status, job.failure, job.finished_at = "interrupted", INTERRUPTED, utcnow()
        await commit(session)
        await asyncio.to_thread(remove_upload, job.id)
    return job


async def list_jobs(*, session: AsyncSession, limit: int, cursor: str | None) -> Page[ImportJob]:
    """The history of import jobs, newest first."""
    return await paginate(
        session,
        select(ImportJob),
        key=ImportJob.created_at,
        tiebreak=ImportJob.id,
        cursor=cursor,
        limit=limit,
        parse_key=parse_utc,
        descending=True,
    )


def _stale(job: ImportJob) -> bool:
    beat = job.heartbeat_at or job.created_at
    return beat < utcnow() - STALE_AFTER


async def mark_interrupted_jobs(db: Database, *, older_than: timedelta = STALE_AFTER) -> int:
    """At start-up: jobs left queued or running by a stopped process are ``interrupted``.

    Only jobs whose beat stopped: with several replicas on one database, a job another replica
    is running right now beats every chunk and is left alone. A job cut off moments before a
    restart is caught later, when someone reads it (GET). Re-submitting the same file completes
    it: the lines already imported are ``unchanged``.
    """
    cutoff = utcnow() - older_than
    stopped = (
        ImportJob.status.in_(UNFINISHED),
        or_(
            ImportJob.heartbeat_at < cutoff,
            ImportJob.heartbeat_at.is_(None) & (ImportJob.created_at < cutoff),
        ),
    )
    async with db.session() as session:
        ids = list((await session.scalars(select(ImportJob.id).where(*stopped))).all())
        if ids:
            await session.execute(
                update(ImportJob)
                .where(ImportJob.id.in_(ids), *stopped)
                .values(status="interrupted", failure=INTERRUPTED, finished_at=utcnow())
            )
            await session.commit()
    for job_id in ids:
        await asyncio.to_thread(remove_upload, job_id)
    if ids:
        log.warning("import_jobs_interrupted", count=len(ids))
    return len(ids)


async def stop_running_jobs(app: FastAPI) -> None:
    """At shutdown: this process's jobs stop now and say so, instead of waiting to be found out."""
    tasks: dict[asyncio.Task[None], uuid.UUID] = app.state.__dict__.get("import_tasks", {})
    ids = list(tasks.values())
    if not ids:
        return
    # Each job stops at the end of its chunk, between two transactions. Cancelling one in the
    # middle of a chunk could leave its SQLite connection holding the write lock after the
    # database was closed: the next start then waited for the lock and failed.
    app.state.import_stop.set()
    running = list(tasks)
    _, late = await asyncio.wait(running, timeout=STOP_WAIT_SECONDS)
    for task in late:  # a chunk that does not end (the database away): cancelled after all
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    app.state.import_stop.clear()  # an app started again runs its new jobs to the end
    db: Database = app.state.db
    async with db.session() as session:
        await session.execute(
            update(ImportJob)
            .where(ImportJob.id.in_(ids), ImportJob.status.in_(UNFINISHED))
            .values(status="interrupted", failure=INTERRUPTED, finished_at=utcnow())
        )
        await session.commit()
    for job_id in ids:  # a job cancelled before it started never reached its own clean-up
        await asyncio.to_thread(remove_upload, job_id)
    log.warning("import_jobs_interrupted", count=len(ids), reason="shutdown")


async def _run_job(
    db: Database,
    job_id: uuid.UUID,
    path: Path,
    *,
    secret: str,
    dry_run: bool,
    actor: str,
    roles: str,
    stop: asyncio.Event,
) -> None:
    errors: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []

    async def on_error(error: LineError) -> None:
        if len(errors) < KEPT_ERRORS:
            errors.append(error.as_dict())

    async def on_skip(line: LineError) -> None:
        if len(skipped) < KEPT_ERRORS:
            skipped.append(line.as_dict())

    async def save(report: ImportReport | None, **fields: Any) -> None:
        async with db.session() as s:
            job = await s.get(ImportJob, job_id)
            if job is None:
                return
            job.heartbeat_at = utcnow()
            if report is not None:
                job.processed_lines = report.processed_lines
                job.created_count = report.created
                job.updated_count = report.updated
                job.transferred_count = report.transferred
                job.released_count = report.released
                job.unchanged_count = report.unchanged
                job.skipped_count = report.skipped
                job.invalid_count = report.invalid
                job.errors = json.dumps(errors)
                job.skipped = json.dumps(skipped)
            for name, value in fields.items():
                setattr(job, name, value)
            await s.commit()

    async def on_progress(report: ImportReport) -> None:
        await save(report)
        if stop.is_set():  # called between chunks: what was imported is whole chunks
            raise _Stopping

    try:
        await save(None, status="running")
        report = await run_import(
            db,
            path,
            secret=secret,
            dry_run=dry_run,
            recorded_by=actor,
            roles=roles,
            source="http",
            job_id=job_id,
            on_error=on_error,
            on_skip=on_skip,
            on_progress=on_progress,
        )
        if not dry_run:
            await audit_import(
                db, actor=actor, roles=roles, report=report, source="http", job_id=job_id
            )
        await save(report, status="done", total_lines=report.total_lines, finished_at=utcnow())
    except _Stopping:
        await save(None, status="interrupted", failure=INTERRUPTED, finished_at=utcnow())
        log.warning("import_job_stopped", job_id=str(job_id), reason="shutdown")
    except BadFile as exc:
        await save(None, status="failed", failure=str(exc), finished_at=utcnow())
    except Exception as exc:  # the job must end in a state a person can see
        log.exception("import_job_failed", job_id=str(job_id))
        await save(
            None,
            status="failed",
            failure=f"Kesalahan internal ({type(exc).__name__}); lihat log layanan.",
            finished_at=utcnow(),
        )
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
