"""The import of an SDP export, for the register's admins: upload, a dry run that lists every
bad line with its reason, the real run with its progress, and the history of jobs. The jobs are
the API's (bekal.registry.jobs), under the API's rule (RegistryAdmin).

The job page follows the job without JavaScript (it reloads itself every two seconds while the
job runs, inside <noscript>); with JavaScript a small script updates it in place instead."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any
from urllib.parse import urlencode

import structlog
from fastapi import Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.datastructures import UploadFile

from bekal.registry import jobs
from bekal.registry.api.imports import MAX_UPLOAD_BYTES, UPLOAD_BODY_CAP, job_public
from bekal.registry.deps import SessionDep
from bekal.registry.importer import BadEncoding
from bekal.registry.schemas import ImportJobPublic
from bekal.registry.web.common import PAGE_SIZE, Admin, pages, waktu
from bekal.shared.auth import Principal
from bekal.shared.idempotency import commit
from bekal.shared.web import STAFF, FormErrors, page_router

router = page_router(pages=pages)
log = structlog.get_logger(__name__)

STATUS_NAMES = {
    "queued": ("Menunggu", "neutral"),
    "running": ("Berjalan", "warn"),
    "done": ("Selesai", "ok"),
    "failed": ("Gagal", "off"),
    "interrupted": ("Terhenti", "off"),
}
# The counts, in the words of the command line's last line (docs/registry-import.md).
COUNTS = (
    ("created", "dibuat"),
    ("updated", "diperbarui"),
    ("transferred", "dipindahkan"),
    ("released", "dibebaskan"),
    ("unchanged", "tidak berubah"),
    ("skipped", "dilewati"),
    ("invalid", "salah"),
)
CHUNK = 1024 * 1024


def angka(value: int) -> str:
    """A number as people here write it: 12.345."""
    return f"{value:,}".replace(",", ".")


def _counts(job: ImportJobPublic) -> list[tuple[str, str]]:
    verb = "akan " if job.dry_run else ""
    return [
        (
            ("baris salah" if name == "invalid" else f"{verb}{word}").capitalize(),
            angka(getattr(job, name)),
        )
        for name, word in COUNTS
    ]


def who(created_by: str, principal: Principal) -> str:
    """Whoever started a job, by the account's subject; "Anda" for the person reading."""
    return "Anda" if created_by == principal.subject else created_by


def _upload_page(
    request: Request,
    principal: Principal,
    history: Any,
    *,
    errors: FormErrors,
    cursor: str | None,
    status_code: int = 200,
) -> Response:
    rows = []
    for job in history.rows:
        name, kind = STATUS_NAMES.get(job.status, (job.status, "neutral"))
        rows.append(
            [
                {"text": waktu(job.created_at), "href": f"{STAFF}/impor/{job.id}"},
                job.filename or "—",
                "Uji coba" if job.dry_run else "Impor",
                {"text": name, "kind": kind},
                angka(job.total_lines),
                angka(job.invalid_count),
                who(job.created_by, principal),
            ]
        )
    return pages.render(
        request,
        "impor.html",
        status_code=status_code,
        title="Impor SDP",
        errors=errors,
        values={},
        rows=rows,
        count=history.count,
        next_href=f"?{urlencode({'cursor': history.next_cursor})}" if history.next_cursor else None,
        first_href=f"{STAFF}/impor" if cursor else None,
    )


@router.get("/impor")
async def upload_form(
    request: Request, session: SessionDep, principal: Admin, cursor: str | None = None
) -> Response:
    history = await jobs.list_jobs(session=session, limit=PAGE_SIZE, cursor=cursor or None)
    return _upload_page(request, principal, history, errors=FormErrors(), cursor=cursor)


async def _save(upload: UploadFile, fd: int) -> int:
    """The upload into the job's file, in pieces; its size (refused above the API's limit)."""
    size = 0
    with os.fdopen(fd, "wb") as out:
        while block := await upload.read(CHUNK):
            size += len(block)
            if size > MAX_UPLOAD_BYTES:
                break
            await asyncio.to_thread(out.write, block)
    return size


@router.post("/impor", max_body_size=UPLOAD_BODY_CAP)
async def start_import(request: Request, session: SessionDep, principal: Admin) -> Response:
    form = await request.form()
    upload = form.get("berkas")
    dry_run = form.get("mode") != "impor"
    errors = FormErrors()
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors.add("berkas", "Pilih berkas CSV hasil ekspor SDP.")
    else:
        job_id = uuid.uuid4()
        fd, path = jobs.new_upload(job_id)
        size = await _save(upload, fd)
        total_lines = 0
        if size == 0:
            errors.add("berkas", "Berkas CSV kosong.")
        elif size > MAX_UPLOAD_BYTES:
            errors.add("berkas", "Berkas terlalu besar (maksimal 512 MB); bagi per fasilitas.")
        else:
            try:
                total_lines = await jobs.checked_upload(path)
            except BadEncoding as exc:  # Latin-1, UTF-16, binary, a line far too long
                errors.add("berkas", str(exc))
        if errors:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        else:
            job = jobs.queue_job(
                session=session,
                job_id=job_id,
                total_lines=total_lines,
                dry_run=dry_run,
                filename=os.path.basename(upload.filename)[:300],
                principal=principal,
            )
            await commit(session)
            jobs.start_job(app=request.app, job=job, path=path, principal=principal)
            log.info("import_job_started", job_id=str(job.id), dry_run=dry_run, bytes=size)
            return RedirectResponse(f"{STAFF}/impor/{job.id}", status_code=303)
    history = await jobs.list_jobs(session=session, limit=PAGE_SIZE, cursor=None)
    return _upload_page(request, principal, history, errors=errors, cursor=None, status_code=422)


@router.get("/impor/{job_id}")
async def job_page(
    request: Request,
    job_id: uuid.UUID,
    session: SessionDep,
    principal: Admin,
    segar: str = "ya",
) -> Response:
    job = job_public(await jobs.get_job(session=session, job_id=job_id))
    name, kind = STATUS_NAMES.get(job.status, (job.status, "neutral"))
    return pages.render(
        request,
        "impor-pekerjaan.html",
        title=("Uji coba impor" if job.dry_run else "Impor") + f" — {job.filename or job.id}",
        job=job,
        status_name=name,
        status_kind=kind,
        running=job.status in jobs.UNFINISHED,
        refresh=segar != "tidak",
        percent=round(job.progress * 100),
        processed=angka(job.processed_lines),
        total=angka(job.total_lines),
        counts=_counts(job),
        created_at=waktu(job.created_at),
        created_by=who(job.created_by, principal),
        finished_at=waktu(job.finished_at),
        error_rows=[[e.line, e.field or "—", e.reason] for e in job.errors],
        skipped_rows=[[e.line, e.reason] for e in job.skipped_lines],
        status_url=f"{STAFF}/impor/{job.id}/status.json",
    )


@router.get("/impor/{job_id}/status.json")
async def job_status(job_id: uuid.UUID, session: SessionDep, principal: Admin) -> Response:
    """The job as the API gives it (GET /api/v1/imports/{id}), for the page's script."""
    job = job_public(await jobs.get_job(session=session, job_id=job_id))
    return JSONResponse(job.model_dump(mode="json"), headers={"Cache-Control": "no-store"})
