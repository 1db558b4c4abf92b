"""Everything that knows the Hugging Face Hub: its API, its downloads and its cache layout."""
