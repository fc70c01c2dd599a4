"""Exit codes shared by every command.

``FINDINGS`` follows ``docker scout cves --exit-code``: it means the command
worked and found something the user asked to be told about (vulnerabilities
left after filters, a failed policy).  It is never used for errors.
"""

OK = 0
ERROR = 1  # a GiropopsError (its own exit_code may be more specific)
FINDINGS = 2
DB_NOT_READY = 3  # errors.DatabaseNotReadyError: no database, or none for the image's ecosystems
USAGE = 64
INTERRUPTED = 130
TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended
