"""Jiaoying (叫应): the composition root — app, scheduler, CLI and migrations are wired here."""

__version__ = "0.1.0"
