"""The DUIS front against independent implementations: CPython's http.client speaks HTTP/1.1 to
duis.sock, xml.etree.ElementTree reads smetsd's responses, and a GBCS reader written here from
gbcs.md walks the payload. Element order is checked against the V5.4 XSD's sequences."""

import base64
import http.client
import socket
import time
import xml.etree.ElementTree as ET

from conftest import P1_PPMID_UNJOINED

SR = "{http://www.dccinterface.co.uk/ServiceUserGateway}"
SUPPLIER = "90-B3-D5-1F-30-01-00-00"
DCC = "90-B3-D5-1F-30-00-00-02"
PPMID = "00-DB-12-34-56-78-00-05"


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over duis.sock (also used by test_duis_signatures.py)."""

    def __init__(self, path: str):
        super().__init__("smetsd", timeout=10)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.unix_path)


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


def async_response(daemon, request_id: str) -> ET.Element:
    for _ in range(200):
        kept = daemon.rpc("duis.responses", {"requestID": request_id})["responses"]
        if kept:
            return ET.fromstring(kept[0]["xml"])
        time.sleep(0.05)
    raise AssertionError(f"no asynchronous response for {request_id}")


def gcm_open(sealed: bytes, key: bytes, iv: bytes, aad: bytes) -> bytes:
    """AES-128-GCM with GBCS's 12-byte tag (gbcs.md §2.2), by the `cryptography` package."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    decryptor = Cipher(algorithms.AES(key), modes.GCM(iv, sealed[-12:], min_tag_length=12)).decryptor()
    decryptor.authenticate_additional_data(aad)
    return decryptor.update(sealed[:-12]) + decryptor.finalize()


ESME = "00-DB-12-34-56-78-00-02"
CHF = "00-DB-12-34-56-78-00-01"


def test_top_up_and_import_registers_read_independently(daemon):
    # 2.2 with duis.md §6.11's example: 500 pence, UTRN counter 7, RequestID counter 7 << 32.
    before = daemon.rpc("meter.debt", {"device": ESME})["credit"]
    counter = 7 << 32
    status, _, data = post(daemon, "/api/v1/serviceS", request(ESME, counter, 1, "2.2", "2.2",
                                                                 "<sr:TopUpDevice><sr:UTRN>73951443011611684638</sr:UTRN></sr:TopUpDevice>"))
    assert status == 200 and ET.fromstring(data).findtext(f"{SR}Header/{SR}ResponseCode") == "I99"
    answer = async_response(daemon, f"{SUPPLIER}:{ESME}:{counter}")
    gbcs = read_gbcs(base64.b64decode(answer.findtext(f"{SR}Body/{SR}ResponseMessage/{SR}GBCSPayload")))
    # CS01a: the RequestID counter, ESME -> supplier, the device's date-time, LIID 20 ‖ low 24 bits, action result 0.
    assert gbcs["code"] == "0007" and gbcs["counter"] == counter and len(gbcs["date"]) == 12
    assert gbcs["content"] == bytes.fromhex("DA 20 00 00 00 00 00 01 00 01 03 00")
    assert daemon.rpc("meter.debt", {"device": ESME})["credit"] == before + 500

    # 4.1.1: ECS17b, the registers under the all-zero key (gbcs.md §2.4), decrypted here.
    status, _, _ = post(daemon, "/api/v1/serviceS", request(ESME, 4101, 1, "4.1", "4.1.1", "<sr:ReadInstantaneousImportRegisters/>"))
    assert status == 200
    answer = async_response(daemon, f"{SUPPLIER}:{ESME}:4101")
    assert names(answer.find(f"{SR}Body/{SR}ResponseMessage")) == ["ServiceReference", "ServiceReferenceVariant", "GBCSPayload"]
    gbcs = read_gbcs(base64.b64decode(answer.findtext(f"{SR}Body/{SR}ResponseMessage/{SR}GBCSPayload")))
    content = gbcs["content"]
    assert gbcs["code"] == "0027" and content[:9] == bytes.fromhex("DA 20 00 10 05 00 00 01 02") and content[-3:] == b"\x01\x03\x00"
    start = content.index(bytes.fromhex("09 2B 31 00 00 00 00")) + 7
    plain = gcm_open(content[start:-3], bytes(16), bytes.fromhex(ESME.replace("-", "")) + bytes(4), b"\x31")
    assert plain[:5] == bytes.fromhex("02 01 02 04 06") and plain[9:15] == bytes.fromhex("02 02 0F 00 16 1E")
    assert int.from_bytes(plain[5:9], "big") > 0
    assert plain[15:] == bytes.fromhex("06 00 00 00 00 02 02 0F 00 16 20")


def test_han_device_log_alert_in_xsd_order(daemon):
    status, _, _ = post(daemon, "/api/v1/serviceS", request(CHF, 8111, 1, "8.11", "8.11",
                        f"<sr:UpdateHANDeviceLog><sr:DeviceID>{P1_PPMID_UNJOINED}</sr:DeviceID><sr:RequestType>Remove</sr:RequestType></sr:UpdateHANDeviceLog>"))
    assert status == 200
    gbcs = read_gbcs(base64.b64decode(async_response(daemon, f"{SUPPLIER}:{CHF}:8111").findtext(f"{SR}Body/{SR}ResponseMessage/{SR}GBCSPayload")))
    assert gbcs["code"] == "0002" and gbcs["originator"] == CHF.replace("-", "") and gbcs["recipient"] == DCC.replace("-", "")
    assert gbcs["content"][-5:] == bytes.fromhex("01 00 01 03 00")
    assert daemon.rpc("devices.get", {"id": P1_PPMID_UNJOINED})["status"] == "Pending"
    alert = None
    for _ in range(200):
        alerts = [r for r in daemon.rpc("duis.responses", {})["responses"] if "DeviceAlertMessage" in r["xml"]]
        if alerts:
            alert = ET.fromstring(alerts[0]["xml"])
            break
        time.sleep(0.05)
    assert alert is not None
    # duis.md §4: an unsolicited alert carries only a ResponseID; DeviceAlertMessage is AlertCode then GBCSPayload.
    assert names(alert.find(SR + "Header")) == ["ResponseID", "ResponseCode", "ResponseDateTime"]
    assert alert.findtext(f"{SR}Header/{SR}ResponseID").startswith(f"{CHF}:{SUPPLIER}:")
    assert names(alert.find(f"{SR}Body/{SR}DeviceAlertMessage")) == ["AlertCode", "GBCSPayload"]
    assert alert.findtext(f"{SR}Body/{SR}DeviceAlertMessage/{SR}AlertCode") == "8F12"
    gbcs = read_gbcs(base64.b64decode(alert.findtext(f"{SR}Body/{SR}DeviceAlertMessage/{SR}GBCSPayload")))
    assert gbcs["cra"] == 3 and gbcs["code"] == "0018" and gbcs["originator"] == CHF.replace("-", "") and gbcs["date"] == b""
    assert gbcs["content"][0] == 0x0F and bytes.fromhex("12 8F 12") in gbcs["content"][:12]
    assert bytes.fromhex(P1_PPMID_UNJOINED.replace("-", "")) not in gbcs["content"]
