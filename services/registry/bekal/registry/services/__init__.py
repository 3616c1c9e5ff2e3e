"""Registry use cases, one module per noun; callers import from the module a function lives in.

Each use case applies the rules, writes rows and stages its events in one go; its caller commits.

- ``audit``: the audit trail, written with each read or change and read back
- ``facilities``: facilities, and the course candidates at one
- ``inmates``: registration, reads and searches, consent
- ``movements``: release, transfer, expected release, absence, return, death, merge
- ``privacy``: erasure and the subject access export
- ``common``: what the inmate modules share (loading a person in scope, the share event)
"""
