"""The library every Bekal service uses: events, messaging, persistence, auth and HTTP plumbing."""
