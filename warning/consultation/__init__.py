"""Consultation (会商研判): invited departments' judgements, the leader's decision, the consultation state machine.

Part of ``warning``: it may import the rest of ``warning``, ``geo`` and ``config``, never ``responses``.
"""
