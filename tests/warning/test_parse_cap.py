"""CAP reading: versions and references, languages, areas and Chinese codes, levels, hostile XML, encodings."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from warning.draft import Hazard, Level, MsgType, ParseError, Status
from warning.feeds import ParserContext, get_parser
from warning.levels import level_from_cap, level_from_parameters, level_from_text
from warning.xmlsafe import parse_xml

cap = get_parser("cap")
CTX = ParserContext()


def zh_cap(event: str = "暴雨橙色预警", *, msg_type: str = "Alert", refs: str = "", encoding: str = "UTF-8",
           extra_info: str = "", severity: str = "Severe", code: str = "140502100") -> str:
    references = f"<references>{refs}</references>" if refs else ""
    return f"""<?xml version="1.0" encoding="{encoding}"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>14050241600000_20260720080000</identifier>
  <sender>晋城市气象台</sender>
  <sent>2026-07-20T08:00:00+08:00</sent>
  <status>Actual</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  {references}
  <info>
    <language>en-US</language>
    <category>Met</category><event>Rainstorm</event><urgency>Immediate</urgency><severity>{severity}</severity>
    <certainty>Likely</certainty><headline>Rainstorm warning</headline>
    <area><areaDesc>Chengqu</areaDesc><geocode><valueName>GB2260</valueName><value>{code}</value></geocode></area>
  </info>
  <info>
    <language>zh-CN</language>
    <category>Met</category><event>{event}</event><urgency>Immediate</urgency><severity>{severity}</severity>
    <certainty>Likely</certainty>
    <expires>2026-07-21T08:00:00+08:00</expires>
    <headline>晋城市气象台发布{event}</headline>
    <parameter><valueName>预警等级</valueName><value>II</value></parameter>
    <area><areaDesc>城区</areaDesc>
      <polygon>35.45,112.78 35.45,112.90 35.58,112.90 35.58,112.78 35.45,112.78</polygon>
      <circle>35.51,112.84 5</circle>
      <geocode><valueName>areaCode</valueName><value>{code}</value></geocode>
    </area>
  </info>
  {extra_info}
</alert>"""


def test_chinese_cap_languages_level_area_codes() -> None:
    (w,) = cap(zh_cap().encode(), CTX).warnings
    assert w.identifier == "14050241600000_20260720080000" and w.sender == "晋城市气象台"
    assert [i.language for i in w.infos] == ["zh-CN", "en-US"]  # zh first though second in the source
    assert w.headline == "晋城市气象台发布暴雨橙色预警"
    assert w.hazard is Hazard.WEATHER and w.level is Level.ORANGE
    assert w.area.polygons[0][0] == (112.78, 35.45)  # (lon, lat)
    assert w.area.circles == [(35.51, 112.84, 5.0)]
    assert ("areaCode", "140502100000") in w.area.geocodes and ("GB2260", "140502100000") in w.area.geocodes
    assert w.expires is not None and w.expires.utcoffset().total_seconds() == 8 * 3600
    assert w.parameters == {"预警等级": ["II"]}


@pytest.mark.parametrize("event,hazard,level", [
    ("山洪灾害气象预警黄色", Hazard.FLOOD, Level.YELLOW),
    ("地质灾害气象风险预警红色", Hazard.GEOHAZARD, Level.RED),
    ("森林火险蓝色预警", Hazard.FOREST_FIRE, Level.BLUE),
    ("大风由黄色升级为橙色", Hazard.WEATHER, Level.ORANGE),
    ("地震", Hazard.EARTHQUAKE, Level.ORANGE),  # no colour: Severe/Immediate/Likely → orange
])
def test_hazard_and_level_from_event(event: str, hazard: Hazard, level: Level) -> None:
    (w,) = cap(zh_cap(event).replace("<parameter><valueName>预警等级</valueName><value>II</value></parameter>", "")
               .encode(), CTX).warnings
    assert (w.hazard, w.level) == (hazard, level)


def test_level_table_and_words() -> None:
    assert level_from_cap("Extreme", "Immediate", "Observed") is Level.RED
    assert level_from_cap("Severe", "Future", "Possible") is Level.BLUE
    assert level_from_cap("Moderate", "Expected", "Likely") is Level.YELLOW
    assert level_from_cap(None, None, None) is Level.BLUE
    assert level_from_text("Red warning for wind") is Level.RED
    assert level_from_text("Flood Watch for Red River") is None
    assert level_from_text("风力4级") is None
    assert level_from_parameters([("awareness_level", "3; orange; Severe")]) is Level.ORANGE
    # A long free-text parameter (SMHI's edit history) quotes old levels: it is not read for one.
    history = '{"history": [{"value": "Red warning for wind, lowered since"}, ' + '{"x": 1}, ' * 10 + "]}"
    assert level_from_parameters([("system_history", history)]) is None
    assert level_from_parameters([("note", "Red warning")]) is Level.RED
    assert level_from_parameters([("预警等级", "当前为橙色预警。" + "说明" * 60)]) is Level.ORANGE


def test_update_and_cancel_references(data_dir: Path) -> None:
    ref = "晋城市气象台,14050241600000_20260719080000,2026-07-19T08:00:00+08:00"
    (up,) = cap(zh_cap(msg_type="Update", refs=ref).encode(), CTX).warnings
    assert up.msg_type is MsgType.UPDATE
    assert [(r.sender, r.identifier) for r in up.references] == [("晋城市气象台", "14050241600000_20260719080000")]
    assert up.references[0].sent is not None and up.references[0].sent.hour == 8
    (cancel,) = cap(zh_cap(msg_type="Cancel", refs=ref).encode(), CTX).warnings
    assert cancel.msg_type is MsgType.CANCEL
    (eccc,) = cap((data_dir / "samples/cap/eccc_thunderstorm_update_en-fr_2012.cap").read_bytes(), CTX).warnings
    assert eccc.msg_type is MsgType.UPDATE and len(eccc.references) == 2
    assert all(r.sender and r.identifier and r.sent for r in eccc.references)
    (tsu,) = cap((data_dir / "samples/cap/us-wcatwc_tsunami-warning_update_2011.cap").read_bytes(), CTX).warnings
    assert tsu.references[0].identifier == "PAAQ-1-lqw6d6"
    (nws,) = get_parser("nws")(
        (data_dir / "samples/nws/nws_api_alerts_active_zone_flood-watch_update_2019-12.json").read_bytes(), CTX
    ).warnings
    assert nws.msg_type is MsgType.UPDATE and len(nws.references) == 4 and nws.hazard is Hazard.FLOOD


def test_containers_edxl_atom_index_and_signature(data_dir: Path) -> None:
    edxl = cap((data_dir / "samples/cap/au_bushfire_edxl-de_3-alerts.xml").read_bytes(), CTX)
    assert len({w.identifier for w in edxl.warnings}) == 7
    index = cap((data_dir / "samples/cap/us-nws_cap-atom-index_2.atom").read_bytes(), CTX)
    assert not index.warnings and len(index.links) == 2 and all(u.startswith("http") for u in index.links)
    ph = cap((data_dir / "samples/cap/ph-pagasa_tropical-cyclone_2014.cap").read_bytes(), CTX)
    assert ph.warnings[0].status is Status.TEST
    assert "Signature" in ph.warnings[0].extra["signature"]
    # Every signature is kept as sent, byte for byte (the signed form covers the whitespace too):
    # NAADS signs twice, the second time with line breaks between the elements of SignedInfo.
    raw = (data_dir / "samples/cap/eccc_naads_alert_en-fr.xml").read_text("utf-8")
    (naads,) = cap(raw.encode(), CTX).warnings
    first, second = naads.extra["signature"].split("\n<Signature", 1)
    second = "<Signature" + second
    assert first.startswith('<Signature Id="NAADS Signature"') and first in raw
    assert second.startswith('<Signature xmlns="http://www.w3.org/2000/09/xmldsig#" Id="Environment Canada">')
    assert second in raw and second.endswith("</Signature>") and second.count("\n") >= 5


def test_signature_text_when_the_payload_holds_more_than_the_alerts_signatures() -> None:
    sig = ('<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">\n  <ds:SignedInfo>\n    <ds:Reference/>\n'
           '  </ds:SignedInfo>\n  <ds:SignatureValue>c2lnbmVk</ds:SignatureValue>\n</ds:Signature>')
    quoted = "<!-- an example: <Signature><SignatureValue>eA==</SignatureValue></Signature> -->"
    doc = zh_cap().replace("</alert>", f"{quoted}{sig}</alert>")
    (w,) = cap(doc.encode(), CTX).warnings
    # Read again with its whitespace and written out from the tree: the same element, prefix and all.
    kept = w.extra["signature"]
    assert kept.startswith("<ds:Signature") and "c2lnbmVk" in kept and "eA==" not in kept
    assert "\n    <ds:Reference/>\n" in kept
    (plain,) = cap(zh_cap().replace("</alert>", f"{sig}</alert>").encode(), CTX).warnings
    assert plain.extra["signature"] == sig


def test_raw_signatures_are_found_whole() -> None:
    from warning.feeds.cap import _raw_signatures

    doc = (b"<a><description>Signature of the duty officer</description><Signature/>"
           b'<ds:Signature xmlns:ds="x">\n<ds:SignatureValue>v</ds:SignatureValue>\n</ds:Signature >'
           b"<Signature Id='2'><SignatureValue/></Signature><b:Signature></a>")
    assert _raw_signatures(doc) == [
        b"<Signature/>",
        b'<ds:Signature xmlns:ds="x">\n<ds:SignatureValue>v</ds:SignatureValue>\n</ds:Signature >',
        b"<Signature Id='2'><SignatureValue/></Signature>",
    ]  # the unclosed <b:Signature> is not a whole element


def test_ack_is_skipped_and_missing_identifier_is_an_error() -> None:
    ack = zh_cap(msg_type="Ack")
    r = cap(ack.encode(), CTX)
    assert not r.warnings and "ack" in r.skipped[0].reason
    with pytest.raises(ParseError) as e:
        cap(zh_cap().replace("<identifier>14050241600000_20260720080000</identifier>", "").encode(), CTX)
    assert e.value.reason == "missing_field"


def test_invalid_polygon_costs_only_its_area_block() -> None:
    bad = zh_cap().replace("35.45,112.78 35.45,112.90 35.58,112.90 35.58,112.78 35.45,112.78", "35.45,112.78 95,1")
    (w,) = cap(bad.encode(), CTX).warnings
    (problem,) = w.area_problems
    assert "城区" in problem and "invalid_geometry" in problem and "polygon" in problem
    # The zh block (polygon, circle, code) is out; the en block (its code) still stands, and so does the warning.
    assert [b.description for b in w.areas] == ["Chengqu"] and not w.area.polygons and not w.area.circles
    assert w.hazard is Hazard.WEATHER and w.level is Level.ORANGE


@pytest.mark.parametrize("text", [
    "35.45,112.78 35.45,112.90 35.58,112.90",  # closed by the reader
    "  35.45,112.78\n\t35.45,112.90 35.58,112.90 35.45,112.78  ",
    "35.45,112.78,0 35.45,112.90,0 35.58,112.90,0",  # a third value (altitude) is ignored
    "35.45,112.78 35.45,,112.90 35.58,112.90", "35.45,112.78 ,112.90 35.58,112.90",
    "nan,112.78 35.45,112.90 35.58,112.90", "35.45,112.78 35.45,112.90 35.58,nan",
    "35.45,inf 35.45,112.90 35.58,112.90", "91,112.78 35.45,112.90 35.58,112.90",
    "35.45,181 35.45,112.90 35.58,112.90", "35.45,112.78 35.45,112.90 35.45,112.78", "x,y 1,2 3,4",
])
def test_polygon_fast_path_agrees_with_the_careful_reading(text: str) -> None:
    from warning.feeds.cap import _coord, _polygon

    def careful() -> list[tuple[float, float]]:
        ring = [(lon, lat) for lat, lon in (_coord(t, "polygon") for t in text.split())]
        if ring[0] != ring[-1]:
            ring.append(ring[0])
        if len(set(ring)) < 3:
            raise ParseError("invalid_geometry", "few points")
        return ring

    try:
        expected: object = careful()
    except ParseError as exc:
        expected = exc.reason
    try:
        got: object = _polygon(text)
    except ParseError as exc:
        got = exc.reason
    assert got == expected


def test_xxe_does_not_read_local_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    payloads = [
        f'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY x SYSTEM "file://{secret}">]>'
        f'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&x;</identifier></alert>',
        f'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY % p SYSTEM "file://{secret}"> %p;]><alert/>',
        f'<?xml version="1.0"?><!DOCTYPE alert SYSTEM "file://{secret}"><alert>&x;</alert>',
    ]
    for p in payloads:
        with pytest.raises(ParseError) as e:
            cap(p.encode(), CTX)
        assert e.value.reason == "hostile_xml"
        assert "TOP-SECRET" not in str(e.value)


def test_a_doctype_behind_comments_and_instructions_is_still_seen() -> None:
    for prolog in ("\ufeff<?xml version='1.0'?>", "<?xml version='1.0'?>\n<!-- <!DOCTYPE x> -->\n<?pi data?>  ",
                   "<!-- a -->" * 1000):
        payload = (f'{prolog}<!DOCTYPE alert [<!ENTITY x "boom">]>'
                   '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&x;</identifier></alert>')
        with pytest.raises(ParseError) as e:
            cap(payload.encode(), CTX)
        assert e.value.reason == "hostile_xml"
    # A DOCTYPE after the root element starts is not a declaration: the parser refuses the document.
    with pytest.raises(ParseError) as e:
        parse_xml(b'<a><!DOCTYPE a [<!ENTITY x "boom">]>&x;</a>')
    assert e.value.reason == "malformed_xml"


def test_billion_laughs_is_refused_with_flat_memory() -> None:
    ents = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    payload = f'<?xml version="1.0"?><!DOCTYPE alert [{ents}]><alert>&lol9;</alert>'.encode()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(20):
        with pytest.raises(ParseError) as e:
            parse_xml(payload)
        assert e.value.reason == "hostile_xml"
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 20 * 1024


def test_encodings() -> None:
    gbk_declared = zh_cap(encoding="GBK").encode("gbk")
    (w,) = cap(gbk_declared, CTX).warnings
    assert w.headline == "晋城市气象台发布暴雨橙色预警"
    with pytest.raises(ParseError) as e:
        cap(zh_cap(encoding="UTF-8").encode("gbk"), CTX)
    assert e.value.reason == "wrong_encoding"
    undeclared = zh_cap().replace('encoding="UTF-8"', "").encode("gbk")
    with pytest.raises(ParseError) as e:
        cap(undeclared, CTX)
    assert e.value.reason == "undeclared_encoding"
    with pytest.raises(ParseError) as e:
        cap(zh_cap(encoding="x-klingon").encode(), CTX)
    assert e.value.reason == "unknown_encoding"
    (w16,) = cap(zh_cap(encoding="UTF-16").encode("utf-16"), CTX).warnings
    assert w16.sender == "晋城市气象台"


def test_size_limit_and_empty() -> None:
    with pytest.raises(ParseError) as e:
        parse_xml(b"<a>" + b"x" * 100 + b"</a>", max_bytes=50)
    assert e.value.reason == "too_large"
    with pytest.raises(ParseError) as e:
        cap(b"   ", CTX)
    assert e.value.reason == "empty"
