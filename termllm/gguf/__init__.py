"""Reading GGUF headers (metadata and tensor table) from files or any byte source."""
