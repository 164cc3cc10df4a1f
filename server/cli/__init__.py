"""Command-line tools besides the server itself."""
