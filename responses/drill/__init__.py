"""Drills (演练): scenario files, and a runner that plays one through the whole system on a virtual clock.

Inside `responses/` imports point one way, down this order (a package imports only those below it;
packages on one line are peers and do not import each other):

    drill → audit → duty → reports → measures → callouts → runs → messaging, contacts
"""
