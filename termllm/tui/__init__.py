"""The Textual chat app; it reaches models and history only through the services."""
