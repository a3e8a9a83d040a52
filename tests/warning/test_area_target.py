"""A warning's area as geo matches it: a drawn polygon or circle decides; a county geocode beside it does not."""

from __future__ import annotations

from warning.draft import AreaSpec
from warning.normalize import area_to_target

RING = [(112.808, 35.430), (112.892, 35.430), (112.892, 35.492), (112.808, 35.492), (112.808, 35.430)]


def test_geocode_beside_a_polygon_is_not_an_area() -> None:
    t = area_to_target(AreaSpec(polygons=[RING], geocodes=[("ADMIN_CODE", "140502")]))
    assert len(t.polygons) == 1 and t.geocodes == ()


def test_geocode_beside_a_circle_is_not_an_area() -> None:
    t = area_to_target(AreaSpec(circles=[(35.46, 112.85, 5.0)], geocodes=[("ADMIN_CODE", "140502")]))
    assert t.circles and t.geocodes == ()


def test_geocode_alone_names_the_area() -> None:
    t = area_to_target(AreaSpec(geocodes=[("ADMIN_CODE", "140502"), ("FIPS6", "006037")]))
    assert t.geocodes == ("140502000000",)  # the Chinese code, normalized; the foreign one left out


def test_points_do_not_displace_geocodes() -> None:
    """An epicentre is where it started, not the area warned: the codes still name the area."""
    t = area_to_target(AreaSpec(points=[(35.46, 112.85, 0.0)], geocodes=[("ADMIN_CODE", "140502001")]))
    assert t.points and t.geocodes == ("140502001000",)
