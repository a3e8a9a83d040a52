"""The foundation every domain stands on: settings, database, clock, event log, auth, default data.

Nothing here imports a domain package (`geo`, `warning`, `responses`) or the wiring (`jiaoying`).
"""
