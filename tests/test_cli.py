import subprocess
import sys

from giropops import __version__
from giropops.cli.main import main


def test_version_flag_prints_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"giropops {__version__}"


def test_no_command_prints_help_and_exits_usage(capsys):
    assert main([]) == 64
    assert "usage: giropops" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "giropops", "no-such-command"], capture_output=True, text=True)
    assert proc.returncode == 64
    assert "invalid choice" in proc.stderr
    assert "Traceback" not in proc.stderr
