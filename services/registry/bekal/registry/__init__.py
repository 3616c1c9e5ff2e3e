"""The registry: facilities and inmates, owned by the corrections administration."""
