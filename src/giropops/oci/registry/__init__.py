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

The names below are loaded on first use (PEP 562): importing a small module of this package
(``http``, ``replay``: a warm push replayed, ``cli._replay``) does not load the client.
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from giropops.oci.registry.auth import ENV_PASSWORD, ENV_USERNAME, Credentials
    from giropops.oci.registry.client import RegistryClient, RegistryOptions, referrers_tag
    from giropops.oci.registry.remote import RemoteImage, RemoteIndex, RemoteLayer, open_registry, write_registry
    from giropops.oci.registry.transport import RetryPolicy

_WHERE = {
    "ENV_PASSWORD": "auth", "ENV_USERNAME": "auth", "Credentials": "auth",
    "RegistryClient": "client", "RegistryOptions": "client", "referrers_tag": "client",
    "RemoteImage": "remote", "RemoteIndex": "remote", "RemoteLayer": "remote", "open_registry": "remote",
    "write_registry": "remote", "RetryPolicy": "transport",
}


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
