"""What the dashboard calls things, in Bahasa Indonesia: sectors, withdrawal reasons, sex, programs.

Events carry codes (a program's ``sector`` is a short code such as ``kerajinan_kayu``, chosen by
the course administrators); people read names. Every name the dashboard shows comes from here.
"""

from __future__ import annotations

from bekal.shared.events.catalogue import Sex, WithdrawalReason

# The sectors of the ministry's courses (small and medium industry, IKM), by the code programs
# carry. A sector not listed here still reads well: see sector_label.
SECTORS: dict[str, str] = {
    "batik": "Batik",
    "kerajinan_kayu": "Kerajinan kayu",
    "kerajinan": "Kerajinan",
    "anyaman": "Anyaman",
    "kulit": "Kerajinan kulit",
    "fesyen": "Fesyen",
    "konveksi": "Konveksi dan menjahit",
    "tenun": "Tenun",
    "pangan_olahan": "Pengolahan pangan",
    "minuman": "Pengolahan minuman",
    "logam": "Pengerjaan logam",
    "furnitur": "Furnitur",
}

# Why a participant left a course before its end. The registry's release (free or on parole)
# and transfer end a course on their own; consent withdrawn is the person leaving it.
WITHDRAWAL_REASONS: dict[str, str] = {
    WithdrawalReason.RELEASED: "Bebas",
    WithdrawalReason.TRANSFERRED: "Dipindahkan",
    WithdrawalReason.CONSENT_WITHDRAWN: "Mengundurkan diri",
    WithdrawalReason.OTHER: "Alasan lain",
}

SEXES: dict[str, str] = {Sex.FEMALE: "Perempuan", Sex.MALE: "Laki-laki"}
UNKNOWN = "(belum diketahui)"
# Sex is shared by the registry with consent; without it the person counts here.
SEX_UNKNOWN = "Belum dibagikan"


def _normal(code: str) -> str:
    return code.strip().lower().replace("-", "_").replace(" ", "_")


def sector_label(code: str | None) -> str:
    """``kerajinan_kayu`` → "Kerajinan kayu"; an unlisted code is written out the same way."""
    if not code:
        return UNKNOWN
    known = SECTORS.get(_normal(code))
    if known:
        return known
    words = code.strip().replace("_", " ").replace("-", " ")
    return " ".join(words.split()).capitalize()


def withdrawal_label(reason: str) -> str:
    return WITHDRAWAL_REASONS.get(reason, reason)


def sex_label(code: str | None) -> str:
    return SEXES.get(code or "", SEX_UNKNOWN)


def program_label(title: str | None, code: str | None, year: int | None = None) -> str:
    """Two programs may share a title: the code (and the year, where the row has one) tell them
    apart. "Bimtek Batik (WUB-BATIK, 2024)"."""
    name = title or code or UNKNOWN
    details = ", ".join(str(part) for part in (code if title else None, year) if part)
    return f"{name} ({details})" if details else name
