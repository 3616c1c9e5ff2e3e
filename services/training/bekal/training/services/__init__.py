"""Training use cases, one module per noun: each takes the caller's transaction, applies the
rules and writes rows and events. Callers import from the module a use case lives in.

- ``programs``: course designs, published and versioned
- ``sessions``: scheduling, then opening, starting, completing or cancelling a session
- ``enrolment``: nominating people for a session or its waiting list, and one leaving it
- ``withdrawals``: live enrolments ending, and the waiting list moving up into freed seats
- ``attendance``: a day's sheet, and the history of every change
- ``assessment``: competency unit results
- ``outcomes``: each participant's outcome decided, and decided again
- ``corrections``: fixing a completed session's record
- ``graduates``: readiness before release, follow-ups after it, enrolments across sessions
- ``replica``: facilities and consenting inmates kept from registry events; anonymisation
- ``merges``: one person held under two registry ids becomes one
- ``common``: what several of them share
"""
