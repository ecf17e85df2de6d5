"""OTA upgrade files and the OTA handshake against zigpy.

- zigpy.ota.image reads the files `smetsctl firmware build` writes, field by field (GB form: header,
  raw Manufacturer Image, big-endian 0x0040 + 64-byte signature; Zigbee form: sub-elements);
- smetsd's codec (through `smetsctl firmware check --json` and the daemon's `firmware.check`) reads
  files zigpy builds, field by field, and names what is wrong with broken ones;
- a zigpy-built rig serves a signed image over the HAN link and the PPMID takes it.

smetsctl is $SMETSCTL_BIN, else the smetsctl beside the smetsd binary the fixtures use.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import zigpy.types as t
from zigpy.ota.image import ElementTagId, FieldControl, HWVersion, OTAImage, OTAImageHeader, SubElement
from zigpy.zcl.foundation import Status

import hanlink as h
from conftest import LAB, P1_PPMID, P2_PPMID
from hanlink import Basic, HanLink, Ota

ACME = json.loads((LAB / "models" / "acme-ppmid-dm.json").read_text())
MANUFACTURER = int(ACME["manufacturer"]["code"], 16)
IMAGE_TYPE = int(ACME["otaImageType"], 16)
NEW_VERSION = 0x01030000
ACME_KEY = LAB / "keys" / "acme-meters-TEST-private.pem"


@pytest.fixture(scope="session")
def smetsctl(smetsd_binary: Path) -> Path:
    env = os.environ.get("SMETSCTL_BIN")
    path = Path(env) if env else smetsd_binary.parent / "smetsctl"
    if not path.is_file():
        pytest.fail(f"no smetsctl at {path}: build it or set SMETSCTL_BIN")
    return path


def body(size: int, seed: int = 1) -> bytes:
    return hashlib.shake_256(f"firmware-{seed}".encode()).digest(size)


def build(smetsctl: Path, tmp_path: Path, *args: str, size: int = 700, name: str = "image.ota") -> tuple[bytes, bytes]:
    """Runs `smetsctl firmware build` on a fresh body; returns (file, body)."""
    payload = body(size)
    (tmp_path / "body.bin").write_bytes(payload)
    out = tmp_path / name
    result = subprocess.run([str(smetsctl), "firmware", "build", "--lab", str(LAB), "--body", str(tmp_path / "body.bin"),
                             "--out", str(out), *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return out.read_bytes(), payload


def check(smetsctl: Path, path: Path, *args: str) -> tuple[int, dict]:
    result = subprocess.run([str(smetsctl), "firmware", "check", str(path), "--lab", str(LAB), "--json", *args],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, json.loads(result.stdout)


def zigpy_header(size_after_header: int, **fields) -> OTAImageHeader:
    control = FieldControl(0)
    if "security_credential_version" in fields:
        control |= FieldControl.SECURITY_CREDENTIAL_VERSION_PRESENT
    if "upgrade_file_destination" in fields:
        control |= FieldControl.DEVICE_SPECIFIC_FILE_PRESENT
    if "minimum_hardware_version" in fields:
        control |= FieldControl.HARDWARE_VERSIONS_PRESENT
    length = 56 + (1 if "security_credential_version" in fields else 0) + (8 if "upgrade_file_destination" in fields else 0) \
        + (4 if "minimum_hardware_version" in fields else 0)
    return OTAImageHeader(upgrade_file_id=OTAImageHeader.MAGIC_VALUE, header_version=0x0100, header_length=length,
                          field_control=control, manufacturer_id=fields.pop("manufacturer_id", MANUFACTURER),
                          image_type=fields.pop("image_type", IMAGE_TYPE), file_version=fields.pop("file_version", NEW_VERSION),
                          stack_version=2, header_string="zigpy-built interop image", image_size=length + size_after_header, **fields)


# ---------------------------------------------------------------------------------------------------
# zigpy reads our files
# ---------------------------------------------------------------------------------------------------


def test_zigpy_reads_our_signed_gb_image_field_by_field(smetsctl, tmp_path):
    destination = "00-DB-12-34-56-78-00-05"
    data, payload = build(smetsctl, tmp_path, "--model", "acme-ppmid-dm", "--version", "01030000", "--key", str(ACME_KEY),
                          "--destination", destination, "--hardware", "1-3", "--header-string", "ACME 01030000")
    header, rest = OTAImageHeader.deserialize(data)
    assert header.upgrade_file_id == 0x0BEEF11E
    assert header.header_version == 0x0100
    assert header.header_length == 56 + 8 + 4 == len(header.serialize())
    assert header.field_control == FieldControl.DEVICE_SPECIFIC_FILE_PRESENT | FieldControl.HARDWARE_VERSIONS_PRESENT
    assert header.device_specific_file and header.hardware_versions_present and not header.security_credential_version_present
    assert header.manufacturer_id == MANUFACTURER
    assert header.image_type == IMAGE_TYPE
    assert header.file_version == NEW_VERSION
    assert header.stack_version == 2
    assert bytes(header.header_string).rstrip(b"\x00") == b"ACME 01030000"
    assert header.image_size == len(data)
    assert header.upgrade_file_destination == h.eui(destination)
    assert header.minimum_hardware_version == HWVersion(1) and header.maximum_hardware_version == HWVersion(3)
    # GB form: the raw Manufacturer Image, then u16 big-endian 0x0040 and the 64-byte signature.
    assert rest[: len(payload)] == payload
    assert rest[len(payload) : len(payload) + 2] == b"\x00\x40"
    assert len(rest) == len(payload) + 66
    # zigpy writes the same header bytes back.
    assert header.serialize() == data[: header.header_length]


def test_zigpy_reads_our_zigbee_image(smetsctl, tmp_path):
    data, payload = build(smetsctl, tmp_path, "--model", "acme-ppmid-dm", "--version", "01030000", "--unsigned", "--format", "zigbee")
    image, rest = OTAImage.deserialize(data)
    assert rest == b""
    assert len(image.subelements) == 1
    assert image.subelements[0].tag_id == ElementTagId.UPGRADE_IMAGE
    assert image.subelements[0].data == payload
    assert image.header.image_size == len(data)
    assert image.serialize() == data


# ---------------------------------------------------------------------------------------------------
# We read zigpy's files
# ---------------------------------------------------------------------------------------------------


def test_we_read_a_zigpy_zigbee_image_field_by_field(smetsctl, tmp_path):
    upgrade = body(900, seed=2)
    elements = [SubElement(tag_id=ElementTagId.UPGRADE_IMAGE, data=upgrade),
                SubElement(tag_id=ElementTagId.IMAGE_INTEGRITY_CODE, data=b"\x11" * 16)]
    after = sum(6 + len(e.data) for e in elements)
    header = zigpy_header(after, security_credential_version=t.uint8_t(1),
                          upgrade_file_destination=h.eui(P1_PPMID),
                          minimum_hardware_version=HWVersion(1), maximum_hardware_version=HWVersion(2))
    data = OTAImage(header=header, subelements=elements).serialize()
    path = tmp_path / "zigpy.ota"
    path.write_bytes(data)
    code, result = check(smetsctl, path, "--model", "acme-ppmid-dm", "--device", P1_PPMID)
    read = result["header"]
    assert read["format"] == "zigbee"
    assert read["headerVersion"] == header.header_version
    assert read["headerLength"] == header.header_length == 69
    assert read["fieldControl"] == int(header.field_control) == 0b111
    assert read["manufacturerCode"] == header.manufacturer_id
    assert read["imageType"] == header.image_type
    assert read["fileVersion"] == header.file_version
    assert read["zigbeeStackVersion"] == header.stack_version
    assert read["headerString"] == "zigpy-built interop image"
    assert read["totalImageSize"] == header.image_size == len(data)
    assert read["securityCredentialVersion"] == 1
    assert read["upgradeFileDestination"] == P1_PPMID
    assert (read["minimumHardwareVersion"], read["maximumHardwareVersion"]) == (1, 2)
    assert read["subElementTags"] == [0x0000, 0x0003]
    assert read["manufacturerImageSize"] == len(upgrade)
    assert result["hash"] == hashlib.sha256(upgrade).hexdigest()
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["format"]["passed"] and checks["destination"]["outcome"] == "pass"
    assert checks["hardwareVersion"]["outcome"] == "pass"
    # A Zigbee image carries no GB signature, and the model requires one: the only failure.
    assert [c["name"] for c in result["checks"] if not c["passed"]] == ["signature"]
    assert code == 1


def test_we_read_a_zigpy_header_with_a_raw_gb_body(smetsctl, tmp_path):
    payload = body(500, seed=3)
    data = zigpy_header(len(payload)).serialize() + payload
    path = tmp_path / "gb.ota"
    path.write_bytes(data)
    _, result = check(smetsctl, path)
    assert result["header"]["format"] == "gb"
    assert result["header"]["manufacturerImageSize"] == len(payload)
    assert result["hash"] == hashlib.sha256(payload).hexdigest()
    assert result["model"] == "acme-ppmid-dm"  # found from the header's manufacturer code and image type


@pytest.mark.parametrize("breakage, reason", [
    ("magic", "bad_magic"),
    ("version", "bad_header_version"),
    ("length", "header_length_inconsistent"),
    ("size", "total_size_mismatch"),
    ("cut", "truncated"),
    ("overrun", "sub_element_overrun"),
])
def test_broken_zigpy_files_are_refused_with_a_named_reason(smetsctl, tmp_path, breakage, reason):
    elements = [SubElement(tag_id=ElementTagId.UPGRADE_IMAGE, data=body(100, seed=4))]
    header = zigpy_header(106)
    if breakage == "magic":
        header.upgrade_file_id = 0x0BEEF11F
    elif breakage == "version":
        header.header_version = 0x0200
    elif breakage == "length":
        header.header_length = 60  # no optional field announced: the header is 56 bytes
    elif breakage == "size":
        header.image_size += 1
    data = header.serialize() + OTAImage(header=zigpy_header(106), subelements=elements).serialize()[56:]
    if breakage == "cut":
        data = data[:40]
    elif breakage == "overrun":
        data = data[:58] + (500).to_bytes(4, "little") + data[62:]
    path = tmp_path / "broken.ota"
    path.write_bytes(data)
    code, result = check(smetsctl, path, "--model", "acme-ppmid-dm", "--format", "zigbee")
    assert code == 1
    assert [c["name"] for c in result["checks"]] == ["format"]
    assert result["checks"][0]["reason"].startswith(reason + ":"), result


def test_the_daemon_reads_a_zigpy_image(daemon):
    payload = body(400, seed=5)
    data = zigpy_header(len(payload)).serialize() + payload
    result = daemon.rpc("firmware.check", {"device": P1_PPMID, "image": base64.b64encode(data).decode()})
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["format"]["passed"] and "GB image" in checks["format"]["reason"]
    assert checks["manufacturer"]["passed"] and checks["imageType"]["passed"] and checks["cpl"]["passed"]
    assert not checks["signature"]["passed"] and "unsigned" in checks["signature"]["reason"]


# ---------------------------------------------------------------------------------------------------
# The handshake: a zigpy rig as OTA server, the PPMID as client
# ---------------------------------------------------------------------------------------------------


def serve(link: HanLink, image: bytes, version: int) -> tuple[list[int], object]:
    """Image Notify, then answers the device's query and blocks until it sends Upgrade End Request."""
    notify = h.build_cluster_command(Ota, "image_notify", payload_type=3, query_jitter=100, manufacturer_code=MANUFACTURER,
                                     image_type=IMAGE_TYPE, new_file_version=version, disable_default_response=True)
    link.send_zcl(Ota.cluster_id, notify[1])
    _, query = link.recv_zcl(Ota)
    assert query.name == "query_next_image", query
    response = h.build_cluster_command(Ota, "query_next_image_response", tsn=query.header.tsn, status=Status.SUCCESS,
                                       manufacturer_code=MANUFACTURER, image_type=IMAGE_TYPE, file_version=version,
                                       image_size=len(image), disable_default_response=True)
    link.send_zcl(Ota.cluster_id, response[1])
    offsets = []
    while True:
        _, request = link.recv_zcl(Ota)
        if request.name != "image_block":
            return offsets, request
        offset = request.payload.file_offset
        offsets.append(offset)
        block = h.build_cluster_command(Ota, "image_block_response", tsn=request.header.tsn, status=Status.SUCCESS,
                                        manufacturer_code=MANUFACTURER, image_type=IMAGE_TYPE, file_version=version,
                                        file_offset=offset, image_data=image[offset : offset + request.payload.maximum_data_size],
                                        disable_default_response=True)
        link.send_zcl(Ota.cluster_id, block[1])


def test_a_zigpy_rig_serves_a_signed_image_and_the_ppmid_takes_it(daemon, smetsctl, tmp_path):
    image, _ = build(smetsctl, tmp_path, "--model", "acme-ppmid-dm", "--version", "01030000", "--key", str(ACME_KEY), size=1500)
    with HanLink(daemon.han_path) as link:
        welcome = link.attach(P1_PPMID)
        assert welcome.current_file_version == 0x01020300
        offsets, end = serve(link, image, NEW_VERSION)
        assert offsets == list(range(0, len(image), ACME["maxImageBlockBytes"]))
        assert end.name == "upgrade_end" and end.payload.status == Status.SUCCESS, end
        assert end.payload.file_version == NEW_VERSION
        values = link.read_attributes(Ota, [0x0001, 0x0004, 0x0006])
        assert values[0x0001][1] == len(image)
        assert values[0x0004][1] == NEW_VERSION
        assert values[0x0006][1] == Ota.ImageUpgradeStatus.Download_complete
        end_response = h.build_cluster_command(Ota, "upgrade_end_response", manufacturer_code=MANUFACTURER, image_type=IMAGE_TYPE,
                                               file_version=NEW_VERSION, current_time=0, upgrade_time=0, disable_default_response=True)
        link.send_zcl(Ota.cluster_id, end_response[1])
        # The activation is a durable write on the daemon's blocking pool; a read may overtake it.
        deadline = time.monotonic() + 5
        while link.read(Basic, "sw_build_id") != "01030000" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert link.read(Basic, "sw_build_id") == "01030000"
    with HanLink(daemon.han_path) as link:
        assert link.attach(P1_PPMID).current_file_version == NEW_VERSION
    assert daemon.rpc("devices.get", {"id": P1_PPMID})["firmwareVersion"] == "01030000"


def test_requirement_7_is_the_dccs_rule_not_the_devices(daemon, smetsctl, tmp_path):
    """MP202 Requirement 7 is a DCC check (MP202 section 7): a rig serving a good image straight over the HAN
    link to a dual-mode PPMID in a SMETS1 system gets Upgrade End SUCCESS; the hub's firmware.update,
    which goes through the DCC, is refused with the rule named."""
    image, _ = build(smetsctl, tmp_path, "--model", "acme-ppmid-dm", "--version", "01030000", "--key", str(ACME_KEY))
    refused = daemon.rpc("firmware.update", {"image": base64.b64encode(image).decode(), "targets": [P2_PPMID]})["results"][0]
    assert refused["outcome"] == "refused" and "requirement 7" in refused["reason"].lower(), refused
    with HanLink(daemon.han_path) as link:
        welcome = link.attach(P2_PPMID)
        assert welcome.smets_mode == 1
        _, end = serve(link, image, NEW_VERSION)
        assert end.name == "upgrade_end" and end.payload.status == Status.SUCCESS, end
    device = daemon.rpc("firmware.version", {"device": P2_PPMID})
    assert device["firmwareVersion"] == "01020300" and device["held"]["fileVersion"] == "01030000"
