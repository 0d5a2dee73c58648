"""Runnable example applications; each module's docstring gives the command that serves it."""
