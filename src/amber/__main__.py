from amber.cli.app import run

run()
