"""Public: our JSON-LD context, so that a verifier can read the terms the credential uses."""

from __future__ import annotations

from fastapi import APIRouter, Response

from bekal.certification import domain, proofs

router = APIRouter(tags=["public"])


@router.get(
    domain.BEKAL_CONTEXT_PATH,
    response_class=Response,
    responses={200: {"content": {"application/ld+json": {}}}},
    summary="The JSON-LD context of certificateNumber, competencyUnits and hours",
)
async def bekal_context() -> Response:
    # A published context never changes (a new one gets a new name), so it may be cached.
    return Response(
        (proofs.CONTEXTS_DIR / proofs.BEKAL_CONTEXT_FILE).read_bytes(),
        media_type="application/ld+json",
        headers={"Cache-Control": "public, max-age=86400", "Access-Control-Allow-Origin": "*"},
    )
