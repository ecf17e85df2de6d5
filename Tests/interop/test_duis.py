"""The DUIS front against independent implementations: CPython's http.client speaks HTTP/1.1 to
duis.sock, xml.etree.ElementTree reads smetsd's responses, and a GBCS reader written here from
gbcs.md walks the payload. Element order is checked against the V5.4 XSD's sequences."""

import base64
import http.client
import socket
import time
import xml.etree.ElementTree as ET

SR = "{http://www.dccinterface.co.uk/ServiceUserGateway}"
SUPPLIER = "90-B3-D5-1F-30-01-00-00"
DCC = "90-B3-D5-1F-30-00-00-02"
PPMID = "00-DB-12-34-56-78-00-05"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("smetsd", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


def request(target: str, counter: int, cv: int, reference: str, variant: str, body: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" schemaVersion="5.4"><sr:Header>'
            f'<sr:RequestID>{SUPPLIER}:{target}:{counter}</sr:RequestID><sr:CommandVariant>{cv}</sr:CommandVariant>'
            f'<sr:ServiceReference>{reference}</sr:ServiceReference><sr:ServiceReferenceVariant>{variant}</sr:ServiceReferenceVariant>'
            f'</sr:Header><sr:Body>{body}</sr:Body></sr:Request>').encode()


def post(daemon, path: str, document: bytes, content_type: str = "application/xml", method: str = "POST"):
    connection = UnixHTTPConnection(str(daemon.runtime / "duis.sock"))
    connection.request(method, path, body=document, headers={"Content-Type": content_type})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, response.getheader("Content-Type"), data


def names(element) -> list[str]:
    return [child.tag.removeprefix(SR) for child in element]


def read_gbcs(payload: bytes) -> dict:
    """gbcs.md §2: DD wrapper (optional), DF block, every length checked."""
    i = 0

    def take(n):
        nonlocal i
        assert i + n <= len(payload), "short"
        i += n
        return payload[i - n:i]

    def length():
        first = take(1)[0]
        if first < 0x80:
            return first
        return int.from_bytes(take(first & 0x7F), "big")

    end = len(payload)
    if payload[0] == 0xDD:
        assert take(7) == b"\xdd" + bytes(6)
        assert length() == len(payload) - i
        assert take(5) == b"\x11\x00\x00\x00\x00"
        end -= 12
    assert take(2) == b"\xdf\x09"
    cra = take(1)[0]
    counter = int.from_bytes(take(8), "big")
    assert take(1) == b"\x08"
    originator = take(8).hex().upper()
    assert take(1) == b"\x08"
    recipient = take(8).hex().upper()
    date = take(take(1)[0])
    other = take(length())
    content = take(length())
    signature = take(length()) if i < end else None
    assert i == end
    return {"cra": cra, "counter": counter, "originator": originator, "recipient": recipient, "date": date,
            "code": other[:2].hex().upper(), "supplementary": other[2:], "content": content, "signature": signature}


def test_read_firmware_version_with_independent_client_and_parser(daemon):
    status, content_type, data = post(daemon, "/api/v1/serviceS", request(PPMID, 77, 1, "11.2", "11.2", "<sr:ReadFirmwareVersion/>"))
    assert status == 200 and content_type == "application/xml"
    root = ET.fromstring(data)
    assert root.tag == SR + "Response" and root.get("schemaVersion") == "5.4"
    assert names(root) == ["Header", "Body"]
    assert names(root.find(SR + "Header")) == ["RequestID", "ResponseCode", "ResponseDateTime"]
    assert root.findtext(f"{SR}Header/{SR}ResponseCode") == "I99"
    assert names(root.find(f"{SR}Body/{SR}ResponseMessage")) == ["ServiceReference", "ServiceReferenceVariant"]

    request_id = f"{SUPPLIER}:{PPMID}:77"
    for _ in range(100):
        kept = daemon.rpc("duis.responses", {"requestID": request_id})["responses"]
        if kept:
            break
        time.sleep(0.05)
    answer = ET.fromstring(kept[0]["xml"])
    assert names(answer.find(SR + "Header")) == ["RequestID", "ResponseID", "ResponseCode", "ResponseDateTime"]
    assert answer.findtext(f"{SR}Header/{SR}ResponseID") == f"{PPMID}:{SUPPLIER}:77"
    message = answer.find(f"{SR}Body/{SR}ResponseMessage")
    assert names(message) == ["ServiceReference", "ServiceReferenceVariant", "GBCSPayload"]
    gbcs = read_gbcs(base64.b64decode(message.findtext(SR + "GBCSPayload")))
    assert gbcs["cra"] == 2 and gbcs["originator"] == PPMID.replace("-", "") and gbcs["recipient"] == DCC.replace("-", "")
    assert gbcs["code"] == "0129" and gbcs["supplementary"] == bytes.fromhex(SUPPLIER.replace("-", "")) + (77).to_bytes(8, "big")
    device = daemon.rpc("devices.get", {"id": PPMID})
    assert gbcs["content"] == bytes.fromhex("30090404" + device["firmwareVersion"] + "020100")
    assert gbcs["signature"] == b""


def test_http_refusals_seen_by_an_independent_client(daemon):
    document = request(PPMID, 78, 1, "11.2", "11.2", "<sr:ReadFirmwareVersion/>")
    assert post(daemon, "/api/v1/nothing", document)[0] == 404
    assert post(daemon, "/api/v1/serviceS", document, method="PUT")[0] == 405
    assert post(daemon, "/api/v1/serviceS", document, content_type="text/plain")[0] == 415
    status, _, data = post(daemon, "/api/v1/serviceS", b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/hostname">]><r>&x;</r>')
    assert status == 400 and b"DOCTYPE" in data
    status, _, data = post(daemon, "/api/v1/serviceT", document)
    assert status == 200 and ET.fromstring(data).findtext(f"{SR}Header/{SR}ResponseCode") == "E13"
