"""Proof that the platform loses nothing: services as real processes, killed, cut off, fed poison.

Each test prints its figures (events sent, effects counted, lost, doubled, recovery time); run
with ``-s`` to see them: ``.venv/bin/python -m pytest tests/reliability -s``.
"""
