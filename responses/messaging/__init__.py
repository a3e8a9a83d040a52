"""Messaging (消息): the outbox, the sender, SMS texts, message states, provider webhooks, the notifiers
(Twilio, fake) and the fake Twilio server. May import: nothing else in responses.

Inside `responses/` imports point one way, down this order (a package imports only those below it;
packages on one line are peers and do not import each other):

    drill → audit → duty → reports → measures → callouts → runs → messaging, contacts

A lower package that must react to a higher one's event takes a listener (``responses.runs.service.follow``),
registered by the wiring in ``jiaoying/wiring.py``; it never imports the higher package.
"""
