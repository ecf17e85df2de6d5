"""duis.signatures "verify" against an independent XML-DSig implementation (duis_dsig.py: lxml's
canonicaliser and the `cryptography` package, signing the way DCC Boxed's signing tool does):
signed requests verify, tampered, unsigned, placeholder-signed and unknown ones get E1, roles get
E2, RequestID counters must increase per originator (durably), and every response smetsd signs
with the DCC's TEST key verifies and is valid against the DUIS V5.4 schema."""

import base64
import time
import xml.etree.ElementTree as ET

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography import x509

import duis_dsig
import duis_xsd
from conftest import LAB, copy_lab, start_daemon, stop_and_check
from test_duis import UnixHTTPConnection

SR = "{http://www.dccinterface.co.uk/ServiceUserGateway}"
SUPPLIER = "90-B3-D5-1F-30-01-00-00"   # IS GS, the shipped TEST certificate
OTHER_USER = "90-B3-D5-1F-30-03-00-00"  # OU, a key made here
STRANGER = "90-B3-D5-1F-30-09-00-00"    # in no trust store
DCC = "90-B3-D5-1F-30-00-00-02"
PPMID = "00-DB-12-34-56-78-00-05"
ESME = "00-DB-12-34-56-78-00-02"
KEYS = LAB / "keys"

SUPPLIER_KEY = serialization.load_pem_private_key((KEYS / "duis-supplier-TEST-private.pem").read_bytes(), None)
DCC_CERT = x509.load_pem_x509_certificate((KEYS / "dcc-xml-sign-TEST-cert.pem").read_bytes())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
STRANGER_KEY = ec.generate_private_key(ec.SECP256R1())


def document(originator: str, target: str, counter: int, cv: int, reference: str, variant: str, body: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" schemaVersion="5.4">\n  <sr:Header>\n'
            f'    <sr:RequestID>{originator}:{target}:{counter}</sr:RequestID>\n    <sr:CommandVariant>{cv}</sr:CommandVariant>\n'
            f'    <sr:ServiceReference>{reference}</sr:ServiceReference>\n    <sr:ServiceReferenceVariant>{variant}</sr:ServiceReferenceVariant>\n'
            f'  </sr:Header>\n  <sr:Body>{body}</sr:Body>\n</sr:Request>\n').encode()


def read_fw(originator=SUPPLIER, counter=1, target=PPMID) -> bytes:
    return document(originator, target, counter, 1, "11.2", "11.2", "<sr:ReadFirmwareVersion/>")


def post(daemon, path: str, body: bytes) -> bytes:
    connection = UnixHTTPConnection(str(daemon.runtime / "duis.sock"))
    connection.request("POST", path, body=body, headers={"Content-Type": "application/xml"})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    assert response.status == 200, (response.status, data)
    return data


def checked(xml: bytes) -> ET.Element:
    """Every response: valid against the V5.4 schema, signed by the DCC's TEST key (verified here)."""
    duis_xsd.assert_valid(xml)
    named = duis_dsig.verify(xml, DCC_CERT.public_key())
    assert named == {"issuer": "CN=smetsd DCC XML signing TEST,OU=89", "serial": "1001"}
    return ET.fromstring(xml)


def code(root: ET.Element) -> str:
    return root.findtext(f"{SR}Header/{SR}ResponseCode")


def exchange(daemon, path: str, body: bytes) -> str:
    return code(checked(post(daemon, path, body)))


def kept(daemon, request_id: str, count: int = 1, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = [entry["xml"] for entry in daemon.rpc("duis.responses", {"requestID": request_id})["responses"]]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture
def verify_lab(tmp_path):
    lab = tmp_path / "lab"
    copy_lab(lab)
    (lab / "keys" / "other-user-TEST-public.pem").write_bytes(OTHER_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    settings = {"duis": {
        "signatures": "verify",
        "users": [
            {"eui": SUPPLIER, "roles": ["IS", "GS"], "certificate": "keys/duis-supplier-TEST-cert.pem"},
            {"eui": OTHER_USER.lower(), "roles": ["OU"], "certificate": "keys/other-user-TEST-public.pem"},
        ],
        "signingKey": "keys/dcc-xml-sign-TEST-private.pem",
        "signingCertificate": "keys/dcc-xml-sign-TEST-cert.pem",
    }}
    import json
    (lab / "smetsd.json").write_text(json.dumps(settings))
    return lab


@pytest.fixture
def verifying(verify_lab, daemon_factory):
    return daemon_factory(verify_lab)


def test_a_request_signed_as_dcc_boxed_signs_verifies_and_both_responses_are_signed(verifying):
    signed = duis_dsig.sign(read_fw(counter=1_700_000_000_001), SUPPLIER_KEY)
    assert exchange(verifying, "/api/v1/serviceS", signed) == "I99"
    [answer] = kept(verifying, f"{SUPPLIER}:{PPMID}:1700000000001")
    root = checked(answer.encode())
    assert code(root) == "I0" and root.findtext(f"{SR}Header/{SR}ResponseID") == f"{PPMID}:{SUPPLIER}:1700000000001"
    assert root.find(f"{SR}Body/{SR}ResponseMessage/{SR}GBCSPayload") is not None


def test_tampered_unsigned_placeholder_and_unknown_signers_get_E1(verifying):
    signed = duis_dsig.sign(read_fw(counter=10), SUPPLIER_KEY)
    tampered = signed.replace(b":10<", b":11<")
    assert tampered != signed
    placeholder = read_fw(counter=12).replace(b"</sr:Request>", (
        b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
        b'<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        b'<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>'
        b'<ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
        b'</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>ZGVmYXVsdA==</ds:DigestValue>'
        b'</ds:Reference></ds:SignedInfo><ds:SignatureValue>ZGVmYXVsdA==</ds:SignatureValue></ds:Signature></sr:Request>'))
    cases = {
        "tampered after signing": tampered,
        "unsigned": read_fw(counter=11),
        "the templates' placeholder": placeholder,
        "a signer the DCC does not know": duis_dsig.sign(read_fw(originator=STRANGER, counter=13), STRANGER_KEY),
        "a known originator signed with another key": duis_dsig.sign(read_fw(counter=14), STRANGER_KEY),
        "signed, then a comment-free whitespace change": signed.replace(b"<sr:Body>", b"<sr:Body>\n"),
    }
    for name, body in cases.items():
        root = checked(post(verifying, "/api/v1/serviceS", body))
        assert code(root) == "E1", name
        assert names(root.find(f"{SR}Body/{SR}ResponseMessage")) == ["ServiceReference", "ServiceReferenceVariant"], name
    time.sleep(0.3)
    for counter in (10, 11, 12, 14):
        assert kept(verifying, f"{SUPPLIER}:{PPMID}:{counter}", timeout=0) == [], "nothing reaches the device"
    logs = verifying.logs()
    assert "the digest of the document does not match" in logs and "is not a DUIS user of this DCC" in logs
    assert "SignatureValue does not verify" in logs and "placeholder signature" in logs
    # The untampered original still goes through: a refused request consumes no counter.
    assert exchange(verifying, "/api/v1/serviceS", signed) == "I99"


def names(element) -> list[str]:
    return [child.tag.removeprefix(SR) for child in element]


def test_roles_are_enforced_after_the_target_checks(verifying):
    hash_ = "AB" * 32
    activate = lambda originator, counter, target=ESME: document(
        originator, target, counter, 4, "11.3", "11.3", f"<sr:ActivateFirmware><sr:FirmwareHash>{hash_}</sr:FirmwareHash></sr:ActivateFirmware>")
    # 11.3 is for IS and GS: an OU user gets E2 ...
    assert exchange(verifying, "/api/v1/serviceT", duis_dsig.sign(activate(OTHER_USER, 20), OTHER_KEY)) == "E2"
    assert "11.3 is for GS IS; 90-B3-D5-1F-30-03-00-00 is OU" in verifying.logs()
    # ... but an unknown target is E19 first (duis.md section 8: target, then roles).
    assert exchange(verifying, "/api/v1/serviceT", duis_dsig.sign(activate(OTHER_USER, 21, target="00-DB-12-34-56-78-99-99"), OTHER_KEY)) == "E19"
    # 8.2 is for all seven roles; the supplier may activate.
    inventory = document(OTHER_USER, DCC, 22, 8, "8.2", "8.2", f"<sr:ReadInventory><sr:DeviceID>{PPMID}</sr:DeviceID></sr:ReadInventory>")
    root = checked(post(verifying, "/api/v1/serviceD", duis_dsig.sign(inventory, OTHER_KEY)))
    assert code(root) == "I0" and root.find(f"{SR}Body/{SR}ResponseMessage/{SR}DSPInventory") is not None
    assert exchange(verifying, "/api/v1/serviceT", duis_dsig.sign(activate(SUPPLIER, 23), SUPPLIER_KEY)) == "I0"


def test_request_counters_increase_per_originator_and_survive_a_restart(verify_lab, smetsd_binary):
    daemon = start_daemon(smetsd_binary, verify_lab)
    try:
        send = lambda counter, originator=SUPPLIER, key=SUPPLIER_KEY: exchange(
            daemon, "/api/v1/serviceS", duis_dsig.sign(read_fw(originator, counter), key))
        assert send(5000) == "I99"
        assert send(5000) == "E1", "the same RequestID again: a replay"
        assert send(4999) == "E1", "a lower counter"
        assert "RequestID counter 4999 is not above 5000" in daemon.logs()
        assert send(5001) == "I99"
        assert send(100, OTHER_USER, OTHER_KEY) == "I99", "counters are per originator"
        # The critical flow: CV 5 repeats its CV 4's RequestID and is not a replay.
        pre = document(SUPPLIER, ESME, 6000, 4, "11.3", "11.3", f"<sr:ActivateFirmware><sr:FirmwareHash>{'CD' * 32}</sr:FirmwareHash></sr:ActivateFirmware>")
        root = checked(post(daemon, "/api/v1/serviceT", duis_dsig.sign(pre, SUPPLIER_KEY)))
        assert code(root) == "I0"
        payload = base64.b64decode(root.findtext(f"{SR}Body/{SR}ResponseMessage/{SR}PreCommand/{SR}GBCSPayload"))
        completed = document(SUPPLIER, ESME, 6000, 5, "11.3", "11.3",
                             f"<sr:SignedPreCommand><sr:GBCSPayload>{base64.b64encode(payload + bytes([0x40]) + bytes(64)).decode()}</sr:GBCSPayload></sr:SignedPreCommand>")
        assert exchange(daemon, "/api/v1/serviceS", duis_dsig.sign(completed, SUPPLIER_KEY)) == "I99"
        assert send(5999) == "E1", "the CV 4 at 6000 moved the counter on"
    finally:
        stop_and_check_keep_state(daemon)
    again = start_daemon(smetsd_binary, verify_lab, state=daemon.state)
    try:
        resend = lambda counter: exchange(again, "/api/v1/serviceS", duis_dsig.sign(read_fw(SUPPLIER, counter), SUPPLIER_KEY))
        assert resend(6000) == "E1", "the last counter is durable across a restart"
        assert resend(6001) == "I99"
    finally:
        stop_and_check(again)


def stop_and_check_keep_state(daemon) -> None:
    code_ = daemon.stop()
    assert code_ == 0, daemon.logs()[-4000:]


def test_lab_mode_accepts_unsigned_requests_and_says_so(daemon_factory):
    daemon = daemon_factory()
    data = post(daemon, "/api/v1/serviceS", read_fw(counter=1))
    root = ET.fromstring(data)
    duis_xsd.assert_valid(data)
    assert code(root) == "I99" and root.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is None
    assert code(ET.fromstring(post(daemon, "/api/v1/serviceS", read_fw(counter=1)))) == "I99", "lab mode checks no counter"
    logs = daemon.logs()
    assert "duis.lab_signatures" in logs and "duis.unsigned" in logs
