"""Pipeline definitions and runners."""
