"""The advisory database: SQLite store, OSV import, update from the OSV exports."""

# the public modules
__all__ = ["importer", "osv", "store", "update"]
