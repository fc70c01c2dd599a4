"""cosign-compatible keys, signatures, attestations and their verification.

Modules (nouns) and what they hold:

* ``keys``      cosign.key / cosign.pub: scrypt + secretbox envelope, PKCS#8 keys, signing and verifying
* ``payload``   the simple-signing payload cosign signs, byte for byte
* ``dsse``      DSSE envelopes (PAE), in-toto statements, cosign's predicate type names
* ``attached``  signature layers of ``sha256-<hex>.sig`` manifests and how one is verified (``Trust``)
* ``rekor``     offline transparency-log evidence: SET, inclusion proof, checkpoint, entry bodies
* ``certs``     certificate chains and signer identities (keyless / own PKI)
* ``bundle``    sigstore bundles v0.1-v0.3 (cosign v3's default)
* ``storage``   where signatures live: a registry repository or an OCI layout (as ``cosign save``)
* ``image``     sign / attest / verify / tree against a store; ``read_attestations_unverified`` for hints
* ``blob``      sign-blob / attest-blob and their verification: files, not images
* ``transfer``  an image's signatures, attestations, SBOMs and referrers carried to another store
* ``trustroot`` Sigstore ``trusted_root.json``: the CAs and log keys keyless verification trusts
* ``regopolicy`` ``--policy FILE``: an attestation's statement checked against a Rego policy
* ``errors``    one class and exit code per reason a key or a signature is refused

Verification never returns a bool: it returns what was verified or raises a ``VerificationError``
subclass naming the reason.  Nothing here uploads to a transparency log.
"""

# the public modules
__all__ = ["attached", "blob", "bundle", "certs", "dsse", "encoding", "errors", "image", "keys", "payload",
    "regopolicy", "rekor", "storage", "transfer", "trustroot"]
