"""Warnings: hazard feeds and their adapters, normalization, dedup and versions, consultation, CAP export."""
