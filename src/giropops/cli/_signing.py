"""Helpers shared by the signing commands: passwords, ``-a key=value``, opening the image's store."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from giropops.cli._registry import transport_options
from giropops.errors import ImageReferenceError, UsageError, quote_for_error

if TYPE_CHECKING:  # the signing code is imported when a command runs, not by its --help
    from giropops.oci.transport import TransportOptions
    from giropops.sign.keys import SigningKey
    from giropops.sign.storage import Store

PASSWORD_ENV = "COSIGN_PASSWORD"  # noqa: S105 - the variable's name, not a password


def add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE",
                   help="registry reference (REPO[:TAG|@DIGEST]) or oci-dir://DIR[:NAME] (an OCI layout, offline)")


def add_annotations(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("-a", "--annotations", action="append", default=[], metavar="KEY=VALUE", help=help_text)


def parse_annotations(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid annotation {quote_for_error(item)}: expected KEY=VALUE")
        out[key] = value
    return out


def open_store(args: argparse.Namespace, options: TransportOptions | None = None) -> Store:
    """The store of ``args.image`` (``options``: the registry flags', when the caller has read them already)."""
    from giropops.oci.transport import parse_spec
    from giropops.sign import storage

    store = storage.open_store(parse_spec(args.image), options or transport_options(args))
    if store is not None:
        return store
    raise ImageReferenceError(f"{quote_for_error(args.image)}: signatures are stored in registries and oci-dir:// "
                          "layouts only")


def read_password(confirm: bool = False) -> bytes:
    import getpass

    env = os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env.encode()
    if not sys.stdin.isatty():
        raise UsageError(f"no terminal to ask for the key password; set {PASSWORD_ENV}")
    first = getpass.getpass("Enter password for private key: ")
    if confirm:
        again = getpass.getpass("Enter password for private key again: ")
        if again != first:
            raise UsageError("passwords do not match")
    return first.encode()


def load_signing_key(path: str) -> SigningKey:
    from pathlib import Path

    from giropops.sign.keys import SigningKey

    return SigningKey.load(Path(path), read_password())


def parse_bool(text: str) -> bool:
    v = text.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {quote_for_error(text)}")


def predicate_uri(name: str) -> str:
    """``--type`` to a predicate type URI; an unknown name is a usage error."""
    from giropops.sign.dsse import predicate_type_uri
    from giropops.sign.errors import PayloadMalformedError

    try:
        return predicate_type_uri(name)
    except PayloadMalformedError as exc:
        raise UsageError(str(exc)) from exc
