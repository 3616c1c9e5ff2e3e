"""Form errors as the API words them, in Bahasa Indonesia, by field: for the error summary at
the top of a page and the message next to each field."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from bekal.shared.guards import CONTROL_CHARACTER_MESSAGE, forbidden_character
from bekal.shared.problems import Problem, RuleViolation

# Pydantic's error types in the words a person reads on a form.
_MESSAGES = {
    "missing": "Wajib diisi.",
    "string_too_short": "Wajib diisi.",
    "string_too_long": "Terlalu panjang: paling banyak {max_length} karakter.",
    "date_from_datetime_parsing": "Tanggal tidak valid; isi dengan format HHHH-BB-TT.",
    "date_parsing": "Tanggal tidak valid; isi dengan format HHHH-BB-TT.",
    "date_type": "Tanggal tidak valid; isi dengan format HHHH-BB-TT.",
    "enum": "Pilih salah satu pilihan yang tersedia.",
    "literal_error": "Pilih salah satu pilihan yang tersedia.",
    "uuid_parsing": "Pilih salah satu pilihan yang tersedia.",
    "uuid_type": "Pilih salah satu pilihan yang tersedia.",
    "bool_parsing": "Pilih ya atau tidak.",
    "int_parsing": "Isi dengan angka bulat.",
    "greater_than_equal": "Paling kecil {ge}.",
    "less_than_equal": "Paling besar {le}.",
    "string_pattern_mismatch": "Bentuknya tidak sesuai.",
    "control_character": CONTROL_CHARACTER_MESSAGE,
}


def _message(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    if kind == "value_error":  # a validator's own message, already in Bahasa Indonesia
        text = str(error.get("msg", ""))
        return text.removeprefix("Value error, ").rstrip(".") + "."
    template = _MESSAGES.get(kind)
    if template is None:
        return "Isian tidak valid."
    try:
        return template.format(**(error.get("ctx") or {}))
    except (KeyError, IndexError):
        return template


class FormErrors(Mapping[str, str]):
    """Field name to message, in the order the fields were checked."""

    def __init__(self, errors: Mapping[str, str] | None = None) -> None:
        self._errors: dict[str, str] = dict(errors or {})

    def __getitem__(self, field: str) -> str:
        return self._errors[field]

    def __iter__(self) -> Iterator[str]:
        return iter(self._errors)

    def __len__(self) -> int:
        return len(self._errors)

    def add(self, field: str, message: str) -> None:
        self._errors.setdefault(field, message)

    @classmethod
    def of_validation(cls, exc: ValidationError) -> FormErrors:
        errors = cls()
        for error in exc.errors():
            loc = [str(part) for part in error.get("loc", ())]
            errors.add(".".join(loc) or "form", _message(error))
        return errors

    @classmethod
    def of_problem(cls, problem: Problem, *, default_field: str = "form") -> FormErrors:
        """The fields a problem names (``errors`` as the API sends them), or its detail."""
        errors = cls()
        for error in problem.extensions.get("errors") or []:
            errors.add(str(error.get("field") or default_field), str(error.get("message")))
        if not errors:
            errors.add(default_field, problem.detail)
        return errors

    @classmethod
    def of_rule(cls, field: str, message: str) -> FormErrors:
        return cls({field: message})


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def refuse_control_characters_in_form(request: Request) -> None:
    """A page's address and form bring no control characters: the page answers 422 naming
    the field (as the API does for its JSON), before its handler reads the form. A
    dependency of every page router, after the CSRF check (which parsed the form: cached);
    a file's content is the upload's own business."""
    fields: list[tuple[str, object]] = list(request.query_params.multi_items())
    if request.headers.get("content-type", "").startswith(_FORMS):
        fields += list((await request.form()).multi_items())
    for name, value in fields:
        for text in (name, value):
            if isinstance(text, str) and forbidden_character(text) is not None:
                message = f"Isian '{name[:40]}': {CONTROL_CHARACTER_MESSAGE}"
                raise RuleViolation(
                    message,
                    slug="validation-error",
                    errors=[{"field": name, "message": CONTROL_CHARACTER_MESSAGE}],
                )
