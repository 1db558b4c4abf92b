"""Application logic shared by the CLI and the TUI; no UI code here."""
