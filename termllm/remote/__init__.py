"""OpenAI-compatible inference servers (llama-server, vLLM, Ollama, LM Studio, llama-cpp-python's
own): the only package that talks HTTP to them. Imported only when a server is configured."""
