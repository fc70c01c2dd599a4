"""``giropops build``: a distroless image from a declarative spec, without a daemon."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from giropops.cli._registry import transport_options
from giropops.errors import quote_for_error

if TYPE_CHECKING:  # the builder is imported by run, not by 'giropops build --help'
    from giropops.builder.output import BuiltImage, BuiltIndex


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("build", help="build an image from a spec (giropops.yaml) without a daemon")
    p.add_argument("-f", "--file", default="giropops.yaml", help="the spec (default: giropops.yaml)")
    p.add_argument("-t", "--tag", action="append", default=[], help="image reference to name the image (repeatable)")
    p.add_argument("--output", help="archive://FILE or oci-dir://DIR (default: archive://<name>.tar)")
    p.add_argument("--push", action="store_true", help="push to the registry named by -t (registry://REF)")
    p.add_argument("--platform", default="", help="linux/amd64 or linux/arm64 (default: the spec's first arch)")
    p.add_argument("--repository-append", "-r", action="append", default=[], metavar="URL",
                   help="add an APK repository to contents.repositories (as apko's flag)")
    p.add_argument("--keyring-append", "-k", action="append", default=[], metavar="KEY",
                   help="add an APK signing key (path or URL) to contents.keyring (as apko's flag)")
    p.add_argument("--context", metavar="DIR", default=None,
                   help="the build context: the directory the spec's files (include, python.project, "
                        "python.requirements-file, python.wheels) must lie in (default: the current directory if "
                        "the spec is inside it, else the spec's directory)")
    p.set_defaults(func=run)


def build_context(spec_path: Path, given: str | None, cwd: Path) -> Path:
    """``--context DIR``; else the current directory when the spec lies below it (``docker build -f SPEC .``);
    else the spec's own directory, so a spec from elsewhere reads nothing beside it."""
    from giropops.builder.errors import SpecError

    if given is not None:
        context = Path(given)
        if not context.is_dir():
            raise SpecError(f"--context {given} is not a directory")
        return context.resolve()
    here = cwd.resolve()
    spec_dir = spec_path.resolve().parent
    return here if spec_dir.is_relative_to(here) else spec_dir


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from giropops.builder.builder import Builder
    from giropops.builder.errors import SpecError
    from giropops.builder.output import index_of, push, write_output
    from giropops.builder.spec import ARCH_ALIASES, load_spec
    from giropops.cli.progress import TerminalProgress
    from giropops.oci.reference import Reference
    from giropops.units import human_size

    spec_path = Path(args.file)
    if not spec_path.is_file():
        raise SpecError(f"spec {args.file} not found (use -f SPEC)")
    tags = [str(Reference.parse(t)) for t in args.tag]
    arch = None
    if args.platform:
        os_, _, a = args.platform.partition("/")
        arch = ARCH_ALIASES.get(a.split("/")[0])
        if os_ != "linux" or arch is None:
            raise SpecError(f"--platform must be linux/amd64 or linux/arm64, got {quote_for_error(args.platform)}")
    output = args.output
    if output is None and not args.push:
        if not tags:
            raise SpecError("give -t REF, --output archive://FILE|oci-dir://DIR, or --push")
        name = Reference.parse(tags[0]).path.rsplit("/", 1)[-1]
        output = f"archive://{name}.tar"
    spec = load_spec(spec_path, build_context(spec_path, args.context, Path.cwd()))
    if args.repository_append or args.keyring_append:
        apk = replace(spec.apk, repositories=(*spec.apk.repositories, *args.repository_append),
                      keyring=(*spec.apk.keyring, *(str(Path(k).resolve()) if "://" not in k else k
                                                    for k in args.keyring_append)))
        spec = replace(spec, apk=apk)
    progress = TerminalProgress()
    builder = Builder(progress=progress)
    archs = [arch] if arch else list(spec.archs)
    results = [builder.build(spec, arch=a) for a in archs]
    img: BuiltImage | BuiltIndex = results[0].image if len(results) == 1 else index_of([r.image for r in results])
    if output is not None:
        write_output(img, output, tags, progress)
        print(f"{output} {img.digest}", file=sys.stdout)
    if args.push:
        for pushed in push(img, tags, progress, transport_options(args)):
            print(pushed, file=sys.stdout)
    for a, result in zip(archs, results, strict=True):
        one = result.image
        print(
            f"linux/{a}: {one.digest}, {len(one.layers)} layers, {human_size(one.compressed_size)} compressed, "
            f"{len(result.packages)} packages"
            + (f", {len(result.reused_layers)} layers from cache" if result.reused_layers else ""),
            file=sys.stderr,
        )
    return 0
