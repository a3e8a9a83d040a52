"""Areas, hazard sites, coordinate systems, spatial targeting and importers."""
