"""The OCI distribution API: pull and push images, tags, referrers.

``RegistryClient`` speaks the API for one host; ``open_registry`` and
``write_registry`` are the source and sink the rest of ``giropops.oci`` uses.

Scheme: HTTPS, except loopback hosts (``localhost``, ``127.0.0.0/8``, ``[::1]``),
which speak plain HTTP as Docker allows; other hosts fall back to plain HTTP or
unverified TLS only with ``RegistryOptions(insecure=True)``.

Credentials (first match wins): ``RegistryOptions.username``/``password``; the
environment variables ``GIROPOPS_REGISTRY_USERNAME`` and
``GIROPOPS_REGISTRY_PASSWORD``; the Docker configuration ``config.json``
(``credHelpers``, ``credsStore``, ``auths``) in ``RegistryOptions.docker_config``,
``$DOCKER_CONFIG`` or ``~/.docker``.  None: anonymous.  See ``auth.py``.

Errors: ``RegistryError`` (with ``AuthError`` and ``NotFoundError``) for what the
registry said, ``ManifestError`` for manifests that are oversized, invalid or do not
match their digest, ``BlobError`` for blobs whose bytes do not match.
"""

from giropops.oci.registry.auth import ENV_PASSWORD, ENV_USERNAME, Credentials
from giropops.oci.registry.client import RegistryClient, RegistryOptions, referrers_tag
from giropops.oci.registry.remote import RemoteImage, RemoteIndex, RemoteLayer, open_registry, write_registry
from giropops.oci.registry.transport import RetryPolicy

__all__ = [
    "ENV_PASSWORD",
    "ENV_USERNAME",
    "Credentials",
    "RegistryClient",
    "RegistryOptions",
    "RemoteImage",
    "RemoteIndex",
    "RemoteLayer",
    "RetryPolicy",
    "open_registry",
    "referrers_tag",
    "write_registry",
]
