"""A small third-party engine: SQLite with its own cursor wrapper class."""
