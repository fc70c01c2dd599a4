"""The advisory database: SQLite store, OSV import, update from the OSV exports."""
