"""Requests that name files, from an independent client: the daemon must not be a confused deputy.

`firmware.check` / `firmware.update` with a `path` may read only a regular file inside the configured
`imagesDirectory` (no absolute path, no `..`, no symbolic link anywhere on the way), and an error
never carries a byte of the file. Large images go as bytes in chunks (`firmware.upload.*`); here a
zigpy-built image is uploaded in odd-sized chunks and checked from the upload.
"""
from __future__ import annotations

import base64
import hashlib
import os

import pytest
from zigpy.ota.image import FieldControl, OTAImageHeader

from conftest import P1_PPMID, RPCError, copy_lab

SECRET = "root:$6$not-a-real-hash:19000:0:99999:7:::\n"


def refused(daemon, method: str, path: str) -> RPCError:
    params = {"path": path, "device": P1_PPMID} if method == "firmware.check" else {"path": path, "targets": [P1_PPMID]}
    with pytest.raises(RPCError) as caught:
        daemon.rpc(method, params)
    return caught.value


def assert_no_content(error: RPCError) -> None:
    text = f"{error.message} {error.data}"
    for leak in ("root", "746F6F72", "0x", "not-a-real-hash"):
        assert leak not in text, f"the error echoes the file: {text}"


def zigpy_image(size: int) -> bytes:
    payload = hashlib.shake_256(b"paths").digest(size)
    header = OTAImageHeader(upgrade_file_id=OTAImageHeader.MAGIC_VALUE, header_version=0x0100, header_length=56,
                            field_control=FieldControl(0), manufacturer_id=0x1234, image_type=0x0001, file_version=0x01030000,
                            stack_version=2, header_string="zigpy-built upload", image_size=56 + size)
    return header.serialize() + payload


def test_etc_shadow_is_refused_without_its_content(daemon):
    for method in ("firmware.check", "firmware.update"):
        error = refused(daemon, method, "/etc/shadow")
        assert error.code == 1021 and error.data["reason"] == "path_refused", error
        assert_no_content(error)


def test_links_and_dot_dot_cannot_leave_the_images_folder(daemon_factory, tmp_path):
    lab = copy_lab(tmp_path / "lab", settings={"imagesDirectory": "images"})
    images = lab / "images"
    images.mkdir()
    (tmp_path / "secret").write_text(SECRET)
    (images / "good.ota").write_bytes(zigpy_image(300))
    (images / "notes.txt").write_text(SECRET)
    os.symlink("/etc/shadow", images / "shadow.ota")
    os.symlink(tmp_path / "secret", images / "secret.ota")
    os.symlink(tmp_path, images / "up")
    os.mkfifo(images / "pipe.ota")
    daemon = daemon_factory(lab)

    result = daemon.rpc("firmware.check", {"path": "good.ota", "device": P1_PPMID})
    assert {c["name"]: c for c in result["checks"]}["format"]["passed"]

    for path in ("/etc/shadow", "shadow.ota", "secret.ota", "up/secret", "../../secret", "images/../../secret", "pipe.ota", "."):
        for method in ("firmware.check", "firmware.update"):
            error = refused(daemon, method, path)
            assert error.data["reason"] == "path_refused", (path, error)
            assert_no_content(error)
    # Inside the folder but not an image: the reason, not the bytes the header holds.
    error = refused(daemon, "firmware.check", "notes.txt")
    assert "bad_magic" in error.message
    assert_no_content(error)
    assert daemon.rpc("daemon.status")["ready"]


def test_a_zigpy_image_uploaded_in_chunks_is_checked(daemon):
    image = zigpy_image(200_000)
    begun = daemon.rpc("firmware.upload.begin", {"size": len(image)})
    upload, offset = begun["upload"], 0
    for size in (1, 65_535, 70_000, len(image)):
        piece = image[offset:offset + size]
        if not piece:
            break
        reply = daemon.rpc("firmware.upload.chunk", {"upload": upload, "offset": offset, "data": base64.b64encode(piece).decode()})
        offset += len(piece)
        assert reply["received"] == offset
    with pytest.raises(RPCError) as wrong:
        daemon.rpc("firmware.upload.commit", {"upload": upload, "sha256": "00" * 32})
    assert wrong.value.data["reason"] == "invalid_state"
    # A wrong digest discards the upload: send it again, whole, and commit with the right one.
    upload = daemon.rpc("firmware.upload.begin", {"size": len(image)})["upload"]
    daemon.rpc("firmware.upload.chunk", {"upload": upload, "offset": 0, "data": base64.b64encode(image).decode()})
    committed = daemon.rpc("firmware.upload.commit", {"upload": upload, "sha256": hashlib.sha256(image).hexdigest()})
    assert committed["size"] == len(image)
    result = daemon.rpc("firmware.check", {"upload": upload, "device": P1_PPMID})
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["format"]["passed"] and checks["manufacturer"]["passed"]
    assert not checks["signature"]["passed"]
