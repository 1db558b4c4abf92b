"""The chat app's widgets: display and input only, no persistence or inference."""
