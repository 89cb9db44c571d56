"""Database access: engine and sessions (engine.py, session.py), the declarative base (base.py),
the ORM models (models.py) and URL handling (urls.py)."""
