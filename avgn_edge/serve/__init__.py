"""avgn-edge serve: many streams through one model (see service.py)."""
