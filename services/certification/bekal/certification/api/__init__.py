"""HTTP routers: the staff API and the public verification pages."""
