"""termllm: chat with local GGUF models from the terminal."""

__version__ = "0.1.0"
