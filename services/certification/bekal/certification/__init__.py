"""Certification: one signed, verifiable completion certificate per completed participant."""
