"""Every kind of DUIS response smetsd emits, sync and async, validated against the official DUIS
V5.4 schema (its response side, xsd/README.md) by libxml2 through lxml: acknowledgements, each
refusal code of the order of checks, device responses, PreCommand, LocalCommand, the inventory,
firmware warnings and future-dated alerts. The signed variants (verify mode) are validated, and
their signatures verified, in test_duis_signatures.py."""

import base64
from datetime import datetime, timedelta
import xml.etree.ElementTree as ET

import duis_xsd
from test_duis_signatures import DCC, ESME, PPMID, SR, SUPPLIER, code, document, kept, post

P2_PPMID = "00-DB-12-34-56-79-00-05"
SPARE_PPMID = "00-DB-12-34-56-78-00-07"


def valid(xml: bytes | str) -> ET.Element:
    duis_xsd.assert_valid(xml)
    return ET.fromstring(xml)


def test_every_response_kind_is_valid_against_the_v54_schema(daemon):
    seen: dict[str, int] = {}
    counter = iter(range(9000, 10000))

    def send(path, target, cv, reference, variant, body, number=None):
        number = number or next(counter)
        root = valid(post(daemon, path, document(SUPPLIER, target, number, cv, reference, variant, body)))
        seen[code(root)] = seen.get(code(root), 0) + 1
        return root, number

    def payload(root, *path):
        return base64.b64decode(root.findtext("/".join([f"{SR}Body", f"{SR}ResponseMessage", *[SR + p for p in path]])))

    read = "<sr:ReadFirmwareVersion/>"
    # Acknowledgement and device response; CV 2's LocalCommand; every refusal of duis.md section 8.
    _, n = send("/api/v1/serviceS", PPMID, 1, "11.2", "11.2", read)
    async_ids = [f"{SUPPLIER}:{PPMID}:{n}"]
    root, _ = send("/api/v1/serviceD", PPMID, 2, "11.2", "11.2", read)
    assert code(root) == "I0" and payload(root, "LocalCommand", "GBCSPayload")
    assert code(send("/api/v1/serviceT", PPMID, 1, "11.2", "11.2", read)[0]) == "E13"
    assert code(send("/api/v1/serviceS", PPMID, 5, "11.2", "11.2", read)[0]) == "E12"
    assert code(send("/api/v1/serviceS", "00-DB-12-34-56-78-99-99", 1, "11.2", "11.2", read)[0]) == "E19"
    hash_ = "AB" * 32
    activate = f"<sr:ActivateFirmware><sr:FirmwareHash>{hash_}</sr:FirmwareHash></sr:ActivateFirmware>"
    assert code(send("/api/v1/serviceT", PPMID, 4, "11.3", "11.3", activate)[0]) == "E11"
    assert code(send("/api/v1/serviceT", SPARE_PPMID, 4, "8.8", "8.8.1",
                     f"<sr:UnjoinServiceCritical><sr:OtherDeviceID>{ESME}</sr:OtherDeviceID></sr:UnjoinServiceCritical>")[0]) in ("E5", "E11")

    # The inventory and a pre-notification.
    root, _ = send("/api/v1/serviceD", DCC, 8, "8.2", "8.2", f"<sr:ReadInventory><sr:DeviceID>{P2_PPMID}</sr:DeviceID></sr:ReadInventory>")
    assert len(root.findall(f"{SR}Body/{SR}ResponseMessage/{SR}DSPInventory/{SR}Device")) >= 6
    assert code(send("/api/v1/serviceD", DCC, 8, "12.2", "12.2",
                     "<sr:DevicePrenotification><sr:DeviceID>00-1A-2B-FF-FE-00-77-01</sr:DeviceID><sr:DeviceManufacturer>1A2B</sr:DeviceManufacturer>"
                     "<sr:DeviceModel>0000C0DE</sr:DeviceModel><sr:DeviceType>PPMID</sr:DeviceType></sr:DevicePrenotification>")[0]) == "I99"

    # The critical flow: PreCommand, then the signed pre-command over the WAN (async) and for local delivery.
    root, n = send("/api/v1/serviceT", ESME, 4, "11.3", "11.3", activate)
    pre = payload(root, "PreCommand", "GBCSPayload")
    signed = f"<sr:SignedPreCommand><sr:GBCSPayload>{base64.b64encode(pre + bytes([0x40]) + bytes(64)).decode()}</sr:GBCSPayload></sr:SignedPreCommand>"
    assert code(send("/api/v1/serviceS", ESME, 5, "11.3", "11.3", signed, number=n)[0]) == "I99"
    async_ids.append(f"{SUPPLIER}:{ESME}:{n}")
    root, n = send("/api/v1/serviceT", ESME, 4, "11.3", "11.3", activate)
    pre = payload(root, "PreCommand", "GBCSPayload")
    local = f"<sr:SignedPreCommand><sr:GBCSPayload>{base64.b64encode(pre + bytes([0x40]) + bytes(64)).decode()}</sr:GBCSPayload></sr:SignedPreCommand>"
    assert code(send("/api/v1/serviceD", ESME, 6, "11.3", "11.3", local, number=n)[0]) == "I0"

    # A future-dated activation: NULL now, the 8F66/8F67 alert when the virtual clock gets there.
    now = datetime.fromisoformat(daemon.rpc("clock.get")["now"].replace("Z", "+00:00"))
    tomorrow = (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = f"<sr:ActivateFirmware><sr:ExecutionDateTime>{tomorrow}</sr:ExecutionDateTime><sr:FirmwareHash>{hash_}</sr:FirmwareHash></sr:ActivateFirmware>"
    root, n = send("/api/v1/serviceT", ESME, 4, "11.3", "11.3", future)
    pre = payload(root, "PreCommand", "GBCSPayload")
    signed = f"<sr:SignedPreCommand><sr:GBCSPayload>{base64.b64encode(pre + bytes([0x40]) + bytes(64)).decode()}</sr:GBCSPayload></sr:SignedPreCommand>"
    assert code(send("/api/v1/serviceS", ESME, 5, "11.3", "11.3", signed, number=n)[0]) == "I99"
    future_id = f"{SUPPLIER}:{ESME}:{n}"
    kept(daemon, future_id, 1)
    daemon.rpc("clock.advance", {"seconds": 172_800})

    # Join and unjoin, the device log, a Change of Tenancy, the CoS envelope and a returned local command.
    root, n = send("/api/v1/serviceT", ESME, 4, "8.7", "8.7.1", f"<sr:JoinServiceCritical><sr:OtherDeviceID>{SPARE_PPMID}</sr:OtherDeviceID></sr:JoinServiceCritical>")
    pre = payload(root, "PreCommand", "GBCSPayload")
    signed = f"<sr:SignedPreCommand><sr:GBCSPayload>{base64.b64encode(pre + bytes([0x40]) + bytes(64)).decode()}</sr:GBCSPayload></sr:SignedPreCommand>"
    assert code(send("/api/v1/serviceS", ESME, 5, "8.7", "8.7.1", signed, number=n)[0]) == "I99"
    async_ids.append(f"{SUPPLIER}:{ESME}:{n}")
    kept(daemon, async_ids[-1])
    _, n = send("/api/v1/serviceS", SPARE_PPMID, 1, "8.8", "8.8.2", f"<sr:UnjoinServiceNonCritical><sr:OtherDeviceID>{ESME}</sr:OtherDeviceID></sr:UnjoinServiceNonCritical>")
    async_ids.append(f"{SUPPLIER}:{SPARE_PPMID}:{n}")
    _, n = send("/api/v1/serviceS", "00-DB-12-34-56-78-00-01", 1, "8.9", "8.9", "<sr:ReadDeviceLog/>")
    async_ids.append(f"{SUPPLIER}:00-DB-12-34-56-78-00-01:{n}")
    _, n = send("/api/v1/serviceS", ESME, 1, "3.2", "3.2",
                "<sr:RestrictAccessForChangeOfTenancy><sr:RestrictionDateTime>2020-01-01T00:00:00Z</sr:RestrictionDateTime></sr:RestrictAccessForChangeOfTenancy>")
    async_ids.append(f"{SUPPLIER}:{ESME}:{n}")
    assert code(send("/api/v1/serviceD", DCC, 8, "8.13", "8.13", f"<sr:ReturnLocalCommandResponse><sr:DeviceGBCSResponse>{base64.b64encode(bytes(8)).decode()}</sr:DeviceGBCSResponse></sr:ReturnLocalCommandResponse>")[0]) == "I99"

    # 11.4 where no listed device takes the image: E110401 with the warning lists.
    root, _ = send("/api/v1/serviceD", DCC, 8, "11.4", "11.4",
                   f"<sr:UpdatePPMIDFirmware><sr:FirmwareImage>{base64.b64encode(bytes(64)).decode()}</sr:FirmwareImage><sr:FirmwareVersion>01030000</sr:FirmwareVersion>"
                   f"<sr:DeviceIDList>00-DB-12-34-56-78-99-99,{SPARE_PPMID}</sr:DeviceIDList></sr:UpdatePPMIDFirmware>")
    assert root.find(f"{SR}Body/{SR}ResponseMessage/{SR}DSPUpdatePPMIDFirmwareWarning") is not None, ET.tostring(root)

    # Every asynchronous response kept: device responses and the future-dated alert.
    for request_id in async_ids:
        [answer] = kept(daemon, request_id)
        assert code(valid(answer)) == "I0", request_id
    responses = kept(daemon, future_id, 2)
    assert len(responses) == 2
    alert = valid(responses[-1])
    assert alert.find(f"{SR}Body/{SR}ResponseMessage/{SR}FutureDatedDeviceAlertMessage/{SR}FutureDatedAlertCode").text in ("8F66", "8F67")
    for response in responses:
        valid(response)
    assert {"I0", "I99", "E11", "E12", "E13", "E19"} <= set(seen), seen
