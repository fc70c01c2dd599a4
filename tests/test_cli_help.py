"""Every command and every positional argument of the real ``giropops`` parser explains itself."""

from __future__ import annotations

import argparse
import subprocess
import sys

from giropops.cli.main import COMMAND_MODULES, build_parser


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> list[str]:
    missing: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            if not action.help:
                missing.append(f"{' '.join(path) or 'giropops'}: {action.metavar or action.dest} has no help")
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                where = " ".join((*path, name))
                if not helps.get(name):
                    missing.append(f"{where}: no help line in the command list")
                if not sub.description:
                    missing.append(f"{where}: no description in its own --help")
                missing.extend(_walk(sub, (*path, name)))
        elif not action.option_strings and not action.help:
            missing.append(f"{' '.join(path)}: positional {action.metavar or action.dest} has no help")
    return missing


def test_every_command_and_positional_has_help_text() -> None:
    parser = build_parser()
    assert _walk(parser, ()) == []
    # the walk saw every command module (aliases such as pull/push come from one module)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    # (the ``blob`` module gives cosign's four blob commands)
    expected = {m.replace("_", "-") for m in COMMAND_MODULES} - {"blob"}
    expected |= {"sign-blob", "verify-blob", "attest-blob", "verify-blob-attestation"}
    assert expected <= set(sub.choices)


def test_a_parser_built_for_one_command_is_just_as_complete() -> None:
    """``giropops COMMAND --help`` builds only that command's parser: it must carry the same texts."""
    for module in COMMAND_MODULES:
        assert _walk(build_parser(module), ()) == [], module


def test_the_real_help_output_explains_commands_and_positionals() -> None:
    def help_of(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "giropops", *args, "--help"], capture_output=True,
                              text=True, timeout=60, check=True)
        return proc.stdout

    assert "Show the version and platform." in help_of("version")
    copy = help_of("copy")
    assert "SRC " in copy and "the image to read" in copy and "where to write it" in copy
    assert "OSV files to import" in help_of("db", "import")
