"""Reporting: read-only projections of every topic and the indicators both ministries read."""
