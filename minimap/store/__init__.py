"""The store: the only code that speaks SQL (tables, engine, named statements)."""
