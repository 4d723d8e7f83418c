"""The pushinbox command."""
