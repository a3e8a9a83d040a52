"""Runs (响应): response plans as data, the run state machine, the engine that starts runs from warnings and
decisions, and supervision (runs overdue to start, notices to the leader on duty). May import: messaging, contacts.

Inside `responses/` imports point one way, down this order (a package imports only those below it;
packages on one line are peers and do not import each other):

    drill → audit → duty → reports → measures → callouts → runs → messaging, contacts

A lower package that must react to a higher one's event takes a listener (``responses.runs.service.follow``),
registered by the wiring in ``jiaoying/wiring.py``; it never imports the higher package.
"""
