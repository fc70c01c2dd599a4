"""``FROM scratch``: an image with no layers, and an index with no manifests.

The config names this machine's platform (as ``docker build`` does for scratch);
``empty_image(platform)`` gives another one.  No ``created`` time is set, so the
digest is stable; ``mutate.canonicalize`` adds one when wanted.
"""

from __future__ import annotations

from giropops.errors import ManifestError
from giropops.oci import mediatypes as mt
from giropops.oci.memory import StaticImage, StaticIndex, build_image
from giropops.oci.model import Descriptor, Index, Platform, canonical_json


def empty_image(platform: Platform | None = None, media_type: str = mt.OCI_MANIFEST) -> StaticImage:
    plat = platform or Platform.host()
    config: dict[str, object] = {"architecture": plat.architecture, "os": plat.os}
    if plat.variant:
        config["variant"] = plat.variant
    config["config"] = {}
    config["rootfs"] = {"type": "layers", "diff_ids": []}
    return build_image(canonical_json(config), [], media_type=media_type)


def empty_index(media_type: str = mt.OCI_INDEX) -> StaticIndex:
    raw = Index(media_type=media_type, manifests=()).to_bytes()

    def load(desc: Descriptor) -> StaticImage:
        raise ManifestError(f"the empty index has no manifest {desc.digest}")

    return StaticIndex(raw, load)


EMPTY_IMAGE: StaticImage = empty_image()
EMPTY_INDEX: StaticIndex = empty_index()
