"""The duty console (值班台): server-rendered pages over the domains' services, every asset served locally."""
