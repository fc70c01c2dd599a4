"""The command line: thin wrappers that parse arguments, call the library and print."""

# the command modules; main.entry is the console script
__all__ = ["attest", "build", "compare", "copy", "cves", "db", "demo", "exitcodes", "generate_key_pair",
    "inspect", "main", "policy", "progress", "quickview", "recommendations", "sbom", "sign", "tree", "verify",
    "verify_attestation", "version"]
