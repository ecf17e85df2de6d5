"""Every kind of DUIS response smetsd emits, sync and async, validated against the official DUIS
V5.4 schema (its response side, xsd/README.md) by libxml2 through lxml: acknowledgements, each
refusal code of the order of checks, device responses, PreCommand, LocalCommand, the inventory,
firmware warnings and future-dated alerts. The signed variants (verify mode) are validated, and
their signatures verified, in test_duis_signatures.py."""

import base64
import subprocess
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

from lxml import etree

import duis_xsd
from conftest import LAB, find_binary
from test_duis_signatures import DCC, ESME, PPMID, SR, SUPPLIER, code, document, kept, post

P2_PPMID = "00-DB-12-34-56-79-00-05"
SPARE_PPMID = "00-DB-12-34-56-78-00-07"


def build_image(folder) -> bytes:
    """An OTA image for the shipped acme PPMID model, version 01030000, signed with its TEST key."""
    smetsctl = find_binary().parent / "smetsctl"
    (folder / "body.bin").write_bytes(bytes((i * 37 + 11) % 256 for i in range(3000)))
    subprocess.run([str(smetsctl), "firmware", "build", "--lab", str(LAB), "--model", "acme-ppmid-dm", "--version", "01030000",
                    "--body", str(folder / "body.bin"), "--out", str(folder / "image.ota"), "--key", str(LAB / "keys" / "acme-meters-TEST-private.pem")],
                   check=True, capture_output=True)
    return (folder / "image.ota").read_bytes()


def valid(xml: bytes | str) -> ET.Element:
    duis_xsd.assert_valid(xml)
    return ET.fromstring(xml)


def test_every_response_kind_is_valid_against_the_v54_schema(daemon, tmp_path):
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

    # 11.4: W110401 with the warning lists when some listed devices take the image (built by
    # smetsctl with the shipped TEST key), E110401 when none does.
    image = build_image(tmp_path)
    update = lambda devices: (f"<sr:UpdatePPMIDFirmware><sr:FirmwareImage>{base64.b64encode(image).decode()}</sr:FirmwareImage>"
                              f"<sr:FirmwareVersion>01030000</sr:FirmwareVersion><sr:DeviceIDList>{devices}</sr:DeviceIDList></sr:UpdatePPMIDFirmware>")
    root, _ = send("/api/v1/serviceD", DCC, 8, "11.4", "11.4", update(f"{PPMID},{P2_PPMID},00-DB-12-34-56-78-99-99"))
    assert code(root) == "W110401"
    assert root.find(f"{SR}Body/{SR}ResponseMessage/{SR}DSPUpdatePPMIDFirmwareWarning/{SR}InvalidDeviceIDList") is not None
    assert code(send("/api/v1/serviceD", DCC, 8, "11.4", "11.4", update("00-DB-12-34-56-78-99-99"))[0]) == "E110401"

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
    assert {"I0", "I99", "W110401", "E110401", "E11", "E12", "E13", "E19"} <= set(seen), seen


def test_the_schema_refuses_what_v54_refuses():
    """The validator can fail: element order, an unknown response code, a body outside the choice."""
    good = ('<sr:Response xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header>'
            f'<sr:RequestID>{SUPPLIER}:{PPMID}:1</sr:RequestID><sr:ResponseCode>I99</sr:ResponseCode>'
            '<sr:ResponseDateTime>2026-12-02T01:38:17.092Z</sr:ResponseDateTime></sr:Header><sr:Body><sr:ResponseMessage>'
            '<sr:ServiceReference>11.2</sr:ServiceReference><sr:ServiceReferenceVariant>11.2</sr:ServiceReferenceVariant>'
            '</sr:ResponseMessage></sr:Body></sr:Response>')
    valid(good)
    bad = [
        good.replace("<sr:ResponseCode>I99</sr:ResponseCode><sr:ResponseDateTime>2026-12-02T01:38:17.092Z</sr:ResponseDateTime>",
                     "<sr:ResponseDateTime>2026-12-02T01:38:17.092Z</sr:ResponseDateTime><sr:ResponseCode>I99</sr:ResponseCode>"),
        good.replace(">I99<", ">E999<"),
        good.replace("<sr:ServiceReference>11.2</sr:ServiceReference>", "<sr:ServiceReference>11.9</sr:ServiceReference>"),
        good.replace("</sr:ResponseMessage>", "<sr:Unexpected/></sr:ResponseMessage>"),
        good.replace(f"{SUPPLIER}:{PPMID}:1", f"{SUPPLIER}:{PPMID}:01"),
    ]
    for text in bad:
        assert not duis_xsd.schema().validate(etree.fromstring(text.encode())), text


def test_top_up_supplier_name_registers_and_han_log_are_valid_against_the_v54_schema(daemon):
    """2.2, 3.4, 4.1.1 and 8.11: their acknowledgements, device responses, CV 2 LocalCommands, the
    8.11 body-rule refusal (E081101) and the CHF's unsolicited 8F12 DeviceAlertMessage."""
    hub, gsme = "00-DB-12-34-56-78-00-01", "00-DB-12-34-56-78-00-03"
    counter = iter(range(20_000, 21_000))
    async_ids = []

    def send(path, target, cv, reference, variant, body, number=None):
        number = number or next(counter)
        root = valid(post(daemon, path, document(SUPPLIER, target, number, cv, reference, variant, body)))
        if cv == 1 and code(root) == "I99":
            async_ids.append(f"{SUPPLIER}:{target}:{number}")
        return code(root)

    top_up = "<sr:TopUpDevice><sr:UTRN>73951443011611684638</sr:UTRN></sr:TopUpDevice>"
    assert send("/api/v1/serviceS", ESME, 1, "2.2", "2.2", top_up, number=7 << 32) == "I99"
    assert send("/api/v1/serviceS", gsme, 1, "2.2", "2.2", top_up, number=(7 << 32) + 1) == "I99"
    assert send("/api/v1/serviceD", ESME, 2, "2.2", "2.2", top_up) == "I0"
    name = ("<sr:UpdateSupplierName><sr:SupplierName>Lab Energy Ltd</sr:SupplierName>"
            "<sr:SupplierTelephoneNumber>0800 555 0199</sr:SupplierTelephoneNumber></sr:UpdateSupplierName>")
    assert send("/api/v1/serviceS", ESME, 1, "3.4", "3.4", name) == "I99"
    assert send("/api/v1/serviceS", gsme, 1, "3.4", "3.4", name) == "I99"
    assert send("/api/v1/serviceS", ESME, 1, "4.1", "4.1.1", "<sr:ReadInstantaneousImportRegisters/>") == "I99"
    assert send("/api/v1/serviceD", ESME, 2, "4.1", "4.1.1", "<sr:ReadInstantaneousImportRegisters/>") == "I0"
    remove = f"<sr:UpdateHANDeviceLog><sr:DeviceID>{SPARE_PPMID}</sr:DeviceID><sr:RequestType>Remove</sr:RequestType></sr:UpdateHANDeviceLog>"
    assert send("/api/v1/serviceS", hub, 1, "8.11", "8.11", remove) == "I99"
    for request_id in async_ids:
        [answer] = kept(daemon, request_id)
        assert code(valid(answer)) == "I0", request_id
    add = (f"<sr:UpdateHANDeviceLog><sr:DeviceID>{SPARE_PPMID}</sr:DeviceID><sr:RequestType>Add</sr:RequestType>"
           "<sr:AddDeviceToCHFWhitelist><sr:JoinTimePeriod>300</sr:JoinTimePeriod><sr:InstallCode>8A31C2D4E5F60718</sr:InstallCode>"
           "</sr:AddDeviceToCHFWhitelist></sr:UpdateHANDeviceLog>")
    assert send("/api/v1/serviceS", hub, 1, "8.11", "8.11", add.replace("<sr:RequestType>Add", "<sr:RequestType>Remove")) == "E081101"
    alerts = [entry["xml"] for entry in daemon.rpc("duis.responses", {})["responses"] if "DeviceAlertMessage" in entry["xml"]]
    assert alerts
    for alert in alerts:
        root = valid(alert)
        assert root.findtext(f"{SR}Body/{SR}DeviceAlertMessage/{SR}AlertCode") == "8F12"


def test_firmware_alerts_are_valid_against_the_v54_schema(daemon, tmp_path):
    """11.4 to a PPMID that takes the image: the CHF's CCS08 (8F8A) DeviceAlertMessage and the DCC's
    PPMIDAlert DCCAlertMessage (after the PPMID's own CS09), both unsolicited, validated and read."""
    image = build_image(tmp_path)
    body = (f"<sr:UpdatePPMIDFirmware><sr:FirmwareImage>{base64.b64encode(image).decode()}</sr:FirmwareImage>"
            f"<sr:FirmwareVersion>01030000</sr:FirmwareVersion><sr:DeviceIDList>{PPMID}</sr:DeviceIDList></sr:UpdatePPMIDFirmware>")
    assert code(valid(post(daemon, "/api/v1/serviceD", document(SUPPLIER, DCC, 30_001, 8, "11.4", "11.4", body)))) == "I99"
    alerts = []
    for _ in range(200):
        alerts = [entry["xml"] for entry in daemon.rpc("duis.responses", {})["responses"] if "AlertMessage>" in entry["xml"]]
        if len(alerts) >= 2:
            break
        time.sleep(0.05)
    assert len(alerts) == 2, alerts
    device = [valid(xml) for xml in alerts if "DeviceAlertMessage" in xml]
    dcc = [valid(xml) for xml in alerts if "DCCAlertMessage" in xml]
    assert len(device) == 1 and len(dcc) == 1
    assert device[0].findtext(f"{SR}Body/{SR}DeviceAlertMessage/{SR}AlertCode") == "8F8A"
    gbcs = base64.b64decode(device[0].findtext(f"{SR}Body/{SR}DeviceAlertMessage/{SR}GBCSPayload"))
    assert gbcs[0] == 0xDF and gbcs[2] == 0x03 and gbcs[30:33] == bytes.fromhex("020128")
    upgrade = dcc[0].find(f"{SR}Body/{SR}DCCAlertMessage/{SR}DCCAlert/{SR}PPMIDAlert")
    assert upgrade.findtext(f"{SR}DeviceID") == PPMID and upgrade.findtext(f"{SR}DeviceAlertCode") == "8F8B"
    assert upgrade.findtext(f"{SR}PPMIDFirmwareUpgradeAlert/{SR}ActivateImageResultCode") == "ActivationSuccess"
    assert dcc[0].findtext(f"{SR}Header/{SR}ResponseID").startswith(f"{DCC}:{SUPPLIER}:")
