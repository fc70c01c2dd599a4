from giropops.cli.main import entry

entry()
