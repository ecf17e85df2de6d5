"""XML-DSig for DUIS documents, written independently of smetsd (lxml's canonicaliser, the
`cryptography` package's ECDSA): signs requests the way DCC Boxed's signing tool does (enveloped
signature, exclusive c14n of SignedInfo, ECDSA P-256 / SHA-256, r || s) and verifies smetsd's
signed responses. The reference digest is over the document without its signature, canonicalised
inclusively (no c14n transform is listed), as duis.md section 3 says."""
import base64
import copy

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def _digest(root):
    h = hashes.Hash(hashes.SHA256())
    h.update(etree.tostring(root.getroottree(), method="c14n", exclusive=False, with_comments=False))
    return h.finalize()


def sign(xml: bytes, key, issuer="CN=smetsd DUIS supplier TEST,OU=87", serial="2001") -> bytes:
    """`xml` with an enveloped signature appended to its root, made with `key` (an EC private key)."""
    root = etree.fromstring(xml)
    for old in root.findall(f"{{{DS}}}Signature"):
        root.remove(old)
    digest = base64.b64encode(_digest(root)).decode()
    sig = etree.SubElement(root, f"{{{DS}}}Signature", nsmap={"ds": DS})
    info = etree.SubElement(sig, f"{{{DS}}}SignedInfo")
    etree.SubElement(info, f"{{{DS}}}CanonicalizationMethod", Algorithm=EXC_C14N)
    etree.SubElement(info, f"{{{DS}}}SignatureMethod", Algorithm=ECDSA_SHA256)
    ref = etree.SubElement(info, f"{{{DS}}}Reference", URI="")
    transforms = etree.SubElement(ref, f"{{{DS}}}Transforms")
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=ENVELOPED)
    etree.SubElement(ref, f"{{{DS}}}DigestMethod", Algorithm=SHA256)
    etree.SubElement(ref, f"{{{DS}}}DigestValue").text = digest
    signed_info = etree.tostring(info, method="c14n", exclusive=True, with_comments=False)
    r, s = decode_dss_signature(key.sign(signed_info, ec.ECDSA(hashes.SHA256())))
    # Java signers (DCC Boxed's tool) break the value with &#13; and a newline: do the same.
    value = base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
    etree.SubElement(sig, f"{{{DS}}}SignatureValue").text = value[:44] + "\r\n" + value[44:]
    key_info = etree.SubElement(sig, f"{{{DS}}}KeyInfo")
    data = etree.SubElement(key_info, f"{{{DS}}}X509Data")
    issuer_serial = etree.SubElement(data, f"{{{DS}}}X509IssuerSerial")
    etree.SubElement(issuer_serial, f"{{{DS}}}X509IssuerName").text = issuer
    etree.SubElement(issuer_serial, f"{{{DS}}}X509SerialNumber").text = serial
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def verify(xml: bytes, public_key) -> dict:
    """Checks the enveloped signature of `xml` with `public_key`; raises ValueError if it fails.
    Returns the KeyInfo's issuer and serial."""
    root = etree.fromstring(xml)
    sig = root[-1]
    if sig.tag != f"{{{DS}}}Signature":
        raise ValueError("not signed: the last child is not ds:Signature")
    info = sig.find(f"{{{DS}}}SignedInfo")
    if info.find(f"{{{DS}}}CanonicalizationMethod").get("Algorithm") != EXC_C14N:
        raise ValueError("SignedInfo is not exclusive c14n")
    if info.find(f"{{{DS}}}SignatureMethod").get("Algorithm") != ECDSA_SHA256:
        raise ValueError("not ecdsa-sha256")
    refs = info.findall(f"{{{DS}}}Reference")
    if len(refs) != 1 or refs[0].get("URI") != "":
        raise ValueError("expected one Reference URI=''")
    algorithms = [t.get("Algorithm") for t in refs[0].find(f"{{{DS}}}Transforms")]
    if algorithms != [ENVELOPED]:
        raise ValueError(f"unexpected transforms {algorithms}")
    unsigned = copy.deepcopy(root)
    unsigned.remove(unsigned[-1])
    expected = base64.b64decode("".join(refs[0].find(f"{{{DS}}}DigestValue").text.split()))
    if _digest(unsigned) != expected:
        raise ValueError("digest mismatch")
    raw = base64.b64decode("".join(sig.find(f"{{{DS}}}SignatureValue").text.split()))
    if len(raw) != 64:
        raise ValueError("SignatureValue is not r || s")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key.verify(der, etree.tostring(info, method="c14n", exclusive=True, with_comments=False), ec.ECDSA(hashes.SHA256()))
    serial = sig.find(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509IssuerSerial")
    return {"issuer": serial.findtext(f"{{{DS}}}X509IssuerName") if serial is not None else None,
            "serial": serial.findtext(f"{{{DS}}}X509SerialNumber") if serial is not None else None}
