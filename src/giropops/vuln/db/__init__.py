"""The advisory database: SQLite store, OSV import, update from the OSV exports."""

# the public modules
__all__ = ["artifact", "ensure", "exploit_feed", "exploits", "importer", "osv", "store", "update"]
