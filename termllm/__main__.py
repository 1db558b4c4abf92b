from termllm.cli.main import run

run()
