"""Screens pushed over the chat app."""
