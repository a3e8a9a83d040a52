"""Safe XML parsing for every feed that speaks XML (CAP, Atom/RSS, EDXL-DE, QuakeML).

Feeds come from outside and some pass through systems we do not control, so the parser refuses what
an attacker could use: entity declarations (XXE reading local files, billion-laughs expansion), DTD
loading, network access and huge trees. A payload whose bytes do not match its declared encoding
(or, undeclared, are not UTF-8 as XML requires) is refused with its own reason rather than being
read with replacement characters: a warning whose text was silently garbled is worse than none.

Reasons raised as ``ParseError.reason``: ``empty``, ``too_large``, ``hostile_xml``,
``unknown_encoding``, ``wrong_encoding``, ``undeclared_encoding``, ``malformed_xml``.
"""

from __future__ import annotations

import codecs
import re
import threading

from lxml import etree

from warning.draft import ParseError

MAX_BYTES = 5 * 1024 * 1024
_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']\s*([A-Za-z0-9._:-]+)\s*[\"']", re.S)
_UTF8_NAMES = {"utf-8", "utf8"}
_local = threading.local()
_EXTERNAL = re.compile(rb"<!DOCTYPE[^>\[]*\b(SYSTEM|PUBLIC)\b")


class _RefuseAll(etree.Resolver):
    """Belt and braces: should libxml2 ever ask for an external resource, it gets nothing."""

    def resolve(self, system_url: str, public_id: str, context: object) -> object:
        return self.resolve_string("", context)


def _parser(keep_blanks: bool) -> etree.XMLParser:
    # One parser per thread and kind: building one costs more than parsing a small CAP document.
    parsers = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    p = parsers.get(keep_blanks)
    if p is None:
        p = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            huge_tree=False, remove_comments=True, remove_pis=True, collect_ids=False,
            remove_blank_text=not keep_blanks,
        )
        p.resolvers.add(_RefuseAll())
        parsers[keep_blanks] = p
    return p


def _check_doctype(data: bytes) -> None:
    if b"<!ENTITY" in data:
        raise ParseError("hostile_xml", "实体声明被拒绝 / DOCTYPE with ENTITY declarations refused")
    if _EXTERNAL.search(data):
        raise ParseError("hostile_xml", "外部 DTD 被拒绝 / DOCTYPE with an external subset refused")


def _to_utf8(data: bytes) -> tuple[bytes, str | None]:
    """Bytes lxml can read as UTF-8, and how they were declared when they are not checked yet.

    Bytes meant as UTF-8 (declared so, or not declared) go to the parser as they are: it refuses
    invalid UTF-8 itself, and only then does ``_check_utf8`` read them to name the problem, instead
    of every payload being decoded once more up front. Any other encoding is decoded here (a
    ParseError names a wrong or unknown one) and handed on as UTF-8 (second value None).
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[3:], "utf-8"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ParseError("wrong_encoding", f"UTF-16: {exc}") from None
        return _strip_decl(text).encode("utf-8"), None
    m = _DECL.match(data, 0, 512)  # as on data[:512], without copying it
    declared = m.group(1).decode("ascii").lower() if m else None
    if declared is None:
        return data, ""
    if declared in _UTF8_NAMES:
        return data, declared
    if declared in ("us-ascii", "ascii"):
        declared = "ascii"
    try:
        codecs.lookup(declared)
    except LookupError:
        raise ParseError("unknown_encoding", f"未知编码 / unknown encoding {declared!r}") from None
    try:
        text = data.decode(declared)
    except UnicodeDecodeError as exc:
        raise ParseError(
            "wrong_encoding", f"字节与声明的编码 {declared} 不符 / bytes do not match declared {declared} ({exc})"
        ) from None
    return _strip_decl(text).encode("utf-8"), None


def _check_utf8(data: bytes, declared: str) -> None:
    """Raise the encoding error of bytes the parser refused, when their encoding is the problem."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not declared:
            raise ParseError(
                "undeclared_encoding",
                f"未声明编码且不是 UTF-8 / no encoding declared and the bytes are not UTF-8 ({exc})",
            ) from None
        raise ParseError(
            "wrong_encoding", f"声明为 UTF-8 但字节不是 UTF-8 / declared UTF-8 but bytes are not ({exc})"
        ) from None


def _strip_decl(text: str) -> str:
    text = text.lstrip("\ufeff")
    if text.lstrip().startswith("<?xml"):
        end = text.find("?>")
        if end >= 0:
            text = text[end + 2 :]
    return text


def _has_doctype(data: bytes) -> bool:
    """Whether a DOCTYPE stands in the prolog: after a byte order mark, white space, the XML
    declaration, processing instructions and comments, before the first element.

    Anything else before the first element makes the parser refuse the document, so skipping it
    (rather than stopping there) can only find a DOCTYPE the parser would never read.
    """
    i = 0
    while True:
        j = data.find(b"<", i)
        if j < 0:
            return False
        if data.startswith(b"<?", j):
            end = data.find(b"?>", j + 2)
            if end < 0:
                return False
            i = end + 2
        elif data.startswith(b"<!--", j):
            end = data.find(b"-->", j + 4)
            if end < 0:
                return False
            i = end + 3
        else:
            return data.startswith(b"<!DOCTYPE", j)


def utf8_of(data: bytes) -> bytes:
    """The bytes ``parse_xml`` hands the parser: UTF-8 without a byte order mark (call it after a
    successful ``parse_xml``, which has already refused what cannot be read)."""
    return _to_utf8(data)[0]


def parse_xml(data: bytes, max_bytes: int = MAX_BYTES, *, keep_blanks: bool = False) -> etree._Element:
    """The root element of ``data``; entities are never resolved and nothing is fetched.

    Whitespace-only text between elements is dropped unless ``keep_blanks``: it means nothing in
    the formats read here, and a tree without it is faster to build and to walk.
    """
    if not data or data.isspace():  # the same ASCII whitespace as bytes.strip(), without copying the payload
        raise ParseError("empty", "空内容 / empty payload")
    if len(data) > max_bytes:
        raise ParseError("too_large", f"{len(data)} 字节超过上限 / bytes over the limit {max_bytes}")
    # Only a document with a DOCTYPE can declare entities or name a DTD, and a DOCTYPE can only stand
    # in the prolog (anywhere else the parser refuses the document): the check reads the prolog, not
    # the whole payload, for the (almost all) documents without one.
    has_doctype = _has_doctype(data)
    if has_doctype:
        _check_doctype(data)
    utf8, unchecked = _to_utf8(data)
    if utf8 is not data:  # re-encoded from another encoding: check what the parser will really see
        has_doctype = _has_doctype(utf8)
        if has_doctype:
            _check_doctype(utf8)
    try:
        root = etree.fromstring(utf8, _parser(keep_blanks))
    except etree.XMLSyntaxError as exc:
        if unchecked is not None:
            _check_utf8(utf8, unchecked)
        raise ParseError("malformed_xml", str(exc)[:300]) from None
    if root is None:
        raise ParseError("empty", "没有根元素 / no root element")
    if has_doctype:
        dtd = root.getroottree().docinfo.internalDTD
        if dtd is not None and any(True for _ in dtd.iterentities()):
            raise ParseError("hostile_xml", "实体声明被拒绝 / entity declarations refused")
    return root


class _LocalNames(dict):  # type: ignore[type-arg]
    """tag -> local name; a miss is computed once, so adapters' hot loops do one C-level dict lookup."""

    def __missing__(self, tag: object) -> str:
        if isinstance(tag, str):
            i = tag.rfind("}")
            name = tag[i + 1 :] if i >= 0 else tag
        else:
            name = ""
        if len(self) < 10_000:  # feeds use few distinct tags; a hostile one cannot grow this without bound
            self[tag] = name
        return name


LOCAL_NAMES: dict[object, str] = _LocalNames()


def local(tag: object) -> str:
    """The local name of an element tag ('' for comments, entities and processing instructions).

    Cached per tag: adapters ask for every element, and feeds use few distinct tags. Hot loops index
    ``LOCAL_NAMES[el.tag]`` directly, which is the same lookup without the call.
    """
    return LOCAL_NAMES[tag]
