"""Bulk imports over HTTP: upload a CSV (a job is created), then follow the job's progress."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request

from bekal.registry import jobs
from bekal.registry.deps import RegistryAdmin, SessionDep
from bekal.registry.importer import EXPECTED_ENCODING, BadEncoding

# app.py imports these here until it is reshaped
from bekal.registry.jobs import mark_interrupted_jobs, stop_running_jobs  # noqa: F401
from bekal.registry.models import ImportJob
from bekal.registry.schemas import ImportErrorPublic, ImportJobPublic
from bekal.shared.idempotency import commit
from bekal.shared.problems import Problem, RuleViolation

router = APIRouter(prefix="/api/v1/imports", tags=["imports"])
log = structlog.get_logger(__name__)

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
# The upload routes' body cap, above the services' default (HTTP_MAX_BODY_BYTES): the CSV,
# and for the page's form its multipart framing. Still counted as it streams in.
UPLOAD_BODY_CAP = MAX_UPLOAD_BYTES + 64 * 1024


def unreadable_csv(exc: BadEncoding) -> Problem:
    """422 for an upload that is not UTF-8 text in lines of an export (Latin-1, UTF-16, a
    binary file, a line far too long): refused before a job exists, naming the line."""
    return Problem(
        exc.english,
        status=422,
        slug="csv-encoding",
        title="Berkas bukan CSV UTF-8",
        line=exc.line,
        expected_encoding=EXPECTED_ENCODING,
        errors=[{"field": "body", "message": exc.english}],
    )


def job_public(job: ImportJob) -> ImportJobPublic:
    total = job.total_lines
    return ImportJobPublic(
        id=job.id,
        status=job.status,
        dry_run=job.dry_run,
        filename=job.filename,
        total_lines=total,
        processed_lines=job.processed_lines,
        progress=min(job.processed_lines / total, 1.0)
        if total
        else (1.0 if job.status == "done" else 0.0),
        created=job.created_count,
        updated=job.updated_count,
        transferred=job.transferred_count,
        released=job.released_count,
        unchanged=job.unchanged_count,
        skipped=job.skipped_count,
        invalid=job.invalid_count,
        errors=[ImportErrorPublic(**e) for e in json.loads(job.errors or "[]")],
        skipped_lines=[ImportErrorPublic(**e) for e in json.loads(job.skipped or "[]")],
        failure=job.failure,
        created_by=job.created_by,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


@router.post(
    "",
    max_body_size=UPLOAD_BODY_CAP,
    status_code=202,
    response_model=ImportJobPublic,
    summary="Upload a CSV (body, text/csv) and start an import job; ?dry_run=true writes nothing",
)
async def start_import(
    request: Request,
    session: SessionDep,
    principal: RegistryAdmin,
    dry_run: bool = False,
    filename: Annotated[str | None, Query(max_length=300)] = None,
) -> ImportJobPublic:
    # Streamed to a temporary file: the upload is never held in memory whole.
    job_id = uuid.uuid4()
    fd, path = jobs.new_upload(job_id)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for block in request.stream():
                size += len(block)
                if size > MAX_UPLOAD_BYTES:
                    raise Problem(
                        "Berkas terlalu besar (maksimal 512 MB); bagi per fasilitas.",
                        status=413,
                        slug="upload-too-large",
                    )
                out.write(block)
        if size == 0:
            raise RuleViolation(
                "Berkas CSV kosong.",
                slug="validation-error",
                errors=[{"field": "body", "message": "berkas CSV kosong"}],
            )
        try:
            total_lines = await jobs.checked_upload(path)
        except BadEncoding as exc:
            raise unreadable_csv(exc) from None
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    job = jobs.queue_job(
        session=session,
        job_id=job_id,
        total_lines=total_lines,
        dry_run=dry_run,
        filename=filename,
        principal=principal,
    )
    await commit(session)
    jobs.start_job(app=request.app, job=job, path=path, principal=principal)
    log.info("import_job_started", job_id=str(job.id), dry_run=dry_run, bytes=size)
    return job_public(job)


@router.get("/{job_id}", response_model=ImportJobPublic, summary="An import job and its progress")
async def get_import(job_id: uuid.UUID, session: SessionDep, principal: RegistryAdmin) -> Any:
    job = await jobs.get_job(session=session, job_id=job_id)
    return job_public(job)
