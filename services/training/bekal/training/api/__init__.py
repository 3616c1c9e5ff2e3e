"""HTTP routers of the training service."""
