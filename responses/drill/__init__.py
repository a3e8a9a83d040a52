"""Drills (演练): scenario files, and a runner that plays one through the whole system on a virtual clock."""
