"""Use cases of the reporting service, one module per noun (as ``api/`` is split):

- ``projections``: fold facility, program, session, enrolment, certificate, revocation,
  follow-up, readiness and waiting-list events into the projections;
- ``people``: shares, releases, merges and erasure, and the id a new fact is filed under;
- ``indicators``: the counts by dimension, with SQL aggregation;
- ``targets``: targets of new entrepreneurs and progress against them;
- ``publication``: the open-data tables published outside the ministries;
- ``common``: what the folds share (data-as-of).

Callers import from the module a function lives in.
"""
