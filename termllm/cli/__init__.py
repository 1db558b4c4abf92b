"""The `termllm` command line: parse, call a service, render."""
