"""Development tooling: the local platform, demo data, generated files, broker launchers."""
