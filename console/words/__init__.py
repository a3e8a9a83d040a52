"""The console's words by page area; ``console.i18n`` merges them into one catalogue.

Each module holds ``WORDS: dict[str, tuple[str, str]]`` (key → (中文, English)); a key defined twice is an
error at import, so two areas never silently disagree about one word.
"""
