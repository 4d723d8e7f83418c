"""Every test talks to a real redis-server started by dispatcher.testing on a free port."""

pytest_plugins = ["dispatcher.testing"]
