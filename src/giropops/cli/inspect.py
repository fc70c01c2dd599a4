"""``giropops inspect IMAGE``: digest, media type, platforms, sizes, layers, config and history.

Uncompressed sizes are measured by decompressing each layer (a registry image
is therefore downloaded once); ``--raw`` prints the manifest bytes unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from giropops.cli._registry import transport_options
from giropops.cli.copy import add_transport_args, parse_platform
from giropops.errors import ManifestError

if TYPE_CHECKING:  # the image code is imported when the command runs, not by its --help
    from giropops.oci.image import Image, ImageIndex
    from giropops.oci.model import Platform

_CHUNK = 1 << 20


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("inspect", help="show an image's manifest, platforms, layers, config and history")
    p.add_argument("image", metavar="IMAGE", help="image spec (REF, archive://, oci-dir://, fs://, local://)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--raw", action="store_true",
                   help="print the raw manifest (the index's, unless --platform picks an image)")
    add_transport_args(p)
    p.set_defaults(func=run)


def _uncompressed_size(image: Image, index: int) -> int:
    layer = image.layers()[index]
    total = 0
    with layer.open_uncompressed() as f:
        while chunk := f.read(_CHUNK):
            total += len(chunk)
    return total


def describe_image(image: Image) -> dict[str, Any]:
    from giropops.oci.image import compressed_size

    cfg = image.config
    layers = []
    for i, (layer, desc) in enumerate(zip(image.layers(), image.manifest.layers, strict=True)):
        entry: dict[str, Any] = {
            "digest": str(layer.digest),
            "diffId": str(layer.diff_id),
            "mediaType": layer.media_type,
            "size": layer.size,
        }
        try:
            entry["uncompressedSize"] = _uncompressed_size(image, i)
        except ManifestError:
            entry["uncompressedSize"] = None
        if desc.annotations:
            entry["annotations"] = dict(desc.annotations)
        layers.append(entry)
    uncompressed = sum(e["uncompressedSize"] or 0 for e in layers)
    return {
        "digest": str(image.digest),
        "mediaType": image.media_type,
        "platform": str(cfg.platform),
        "created": cfg.created,
        "compressedSize": compressed_size(image),
        "uncompressedSize": uncompressed,
        "annotations": dict(image.manifest.annotations),
        "config": {
            "digest": str(image.manifest.config.digest),
            "mediaType": image.manifest.config.media_type,
            "user": cfg.user,
            "entrypoint": cfg.entrypoint,
            "cmd": cfg.cmd,
            "env": cfg.env,
            "workingDir": cfg.working_dir,
            "exposedPorts": cfg.exposed_ports,
            "labels": cfg.labels,
        },
        "layers": layers,
        "history": [
            {k: h[k] for k in ("created", "created_by", "comment", "empty_layer") if k in h} for h in cfg.history
        ],
    }


def describe(obj: Image | ImageIndex, platform: Platform | None, name: str) -> dict[str, Any]:
    from giropops.oci.image import Image
    from giropops.oci.model import Platform

    if isinstance(obj, Image):
        return {"name": name, **describe_image(obj)}
    manifests = []
    for desc in obj.index.manifests:
        manifests.append({
            "digest": str(desc.digest),
            "mediaType": desc.media_type,
            "size": desc.size,
            "platform": str(desc.platform) if desc.platform else None,
            "annotations": dict(desc.annotations),
        })
    out: dict[str, Any] = {
        "name": name,
        "digest": str(obj.digest),
        "mediaType": obj.index.media_type,
        "platforms": [m["platform"] for m in manifests if m["platform"]],
        "manifests": manifests,
        "annotations": dict(obj.index.annotations),
    }
    want = platform or Platform.host()
    try:
        out["image"] = describe_image(obj.image_for(want))
    except ManifestError:
        if platform is not None:
            raise
        out["image"] = None
    return out


def _human(n: int | None) -> str:
    from giropops.units import human_size

    return "?" if n is None else human_size(n)


def _text_image(d: dict[str, Any], out: list[str]) -> None:
    out.append(f"Digest:        {d['digest']}")
    out.append(f"Media type:    {d['mediaType']}")
    out.append(f"Platform:      {d['platform']}")
    if d["created"]:
        out.append(f"Created:       {d['created']}")
    out.append(f"Size:          {_human(d['compressedSize'])} compressed, "
               f"{_human(d['uncompressedSize'])} uncompressed")
    out.append(f"Layers:        {len(d['layers'])}")
    for layer in d["layers"]:
        out.append(f"  {layer['digest']}  {_human(layer['size'])} ({_human(layer['uncompressedSize'])} uncompressed)")
        out.append(f"    diff_id {layer['diffId']}  {layer['mediaType']}")
    c = d["config"]
    out.append("Config:")
    out.append(f"  User:        {c['user']}")
    out.append(f"  Entrypoint:  {json.dumps(c['entrypoint']) if c['entrypoint'] else ''}")
    out.append(f"  Cmd:         {json.dumps(c['cmd']) if c['cmd'] else ''}")
    out.append(f"  WorkingDir:  {c['workingDir']}")
    out.append(f"  Ports:       {' '.join(c['exposedPorts'])}")
    out.append("  Env:")
    out.extend(f"    {e}" for e in c["env"])
    out.append("  Labels:")
    out.extend(f"    {k}={v}" for k, v in sorted(c["labels"].items()))
    out.append("History:")
    for h in d["history"]:
        flag = " (empty)" if h.get("empty_layer") else ""
        out.append(f"  {h.get('created', '')}  {h.get('created_by', '')}{flag}")


def render_text(d: dict[str, Any]) -> str:
    out = [f"Name:          {d['name']}"]
    if "manifests" in d:
        out.append(f"Index:         {d['digest']}")
        out.append(f"Media type:    {d['mediaType']}")
        out.append("Platforms:")
        for m in d["manifests"]:
            out.append(f"  {m['platform'] or '-':<20} {m['digest']}  {m['mediaType']}")
        if d["image"] is None:
            return "\n".join(out) + "\n"
        out.append("Image for this platform:")
        _text_image(d["image"], out)
    else:
        _text_image(d, out)
    return "\n".join(out) + "\n"


def run(args: argparse.Namespace) -> int:
    from giropops.oci.image import ImageIndex
    from giropops.oci.transport import open_any

    platform = parse_platform(args.platform)
    obj = open_any(args.image, transport_options(args), platform=platform)
    if args.raw:
        target: Image | ImageIndex = obj
        if platform is not None and isinstance(obj, ImageIndex):
            target = obj.image_for(platform)
        sys.stdout.buffer.write(target.raw_manifest)
        sys.stdout.flush()
        return 0
    info = describe(obj, platform, args.image)
    if args.format == "json":
        print(json.dumps(info, indent=2))
    else:
        sys.stdout.write(render_text(info))
    return 0
