"""Validation of smetsd's DUIS output against the official V5.4 schema (its response side, see
xsd/README.md) with lxml, i.e. libxml2's validator: independent of smetsd's writer."""
from functools import lru_cache
from pathlib import Path

from lxml import etree

XSD = Path(__file__).parent / "xsd" / "DUIS-Schema-V5.4-responses.xsd"


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def assert_valid(xml: bytes | str) -> None:
    document = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    s = schema()
    assert s.validate(document), f"not valid against DUIS V5.4: {s.error_log}\n{xml!r}"
