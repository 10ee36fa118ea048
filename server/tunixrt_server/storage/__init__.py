"""Storage: the only package that knows SQL (SQLAlchemy 2.x Core)."""
