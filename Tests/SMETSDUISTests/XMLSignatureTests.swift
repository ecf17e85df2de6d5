import Crypto
import Foundation
import Testing
@testable import SMETSDUIS

/// Canonical XML and XML-DSig against outputs of an independent implementation: the expected
/// canonical forms and the signed request below were made with Python lxml's c14n and the
/// `cryptography` package (Tests/interop/duis_dsig.py), not with smetsd.
@Suite struct XMLSignatureTests {
    /// CRLF line ends, a comment, an unused namespace, attributes out of order, `&#13;`, CDATA,
    /// an empty element, `xmlns=""` and a redundant redeclaration.
    static let c14nInput = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<!-- head -->\r\n<sr:Request xmlns:sr=\"urn:sr\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns=\"urn:default\" schemaVersion=\"5.4\" b=\"2\" a=\"1\">\r\n  <sr:Header z=\"&#13;&#9;x\" xmlns:q=\"urn:q\" q:k=\"v\" sr:a=\"3\"><!-- c -->A&amp;B &lt; &gt; \"q\"\r\n<![CDATA[<raw> & ]]></sr:Header>\r\n  <Plain/><inner xmlns=\"\"><deep xmlns=\"urn:default\"/></inner>\r\n  <sr:Body><sr:X xmlns:sr=\"urn:sr\">t</sr:X></sr:Body>\r\n</sr:Request>\r\n"

    /// A read-firmware request signed by duis_dsig.sign with devices/keys/duis-supplier-TEST-private.pem
    /// (SignatureValue broken by `&#13;` and a line feed, as Java signers do).
    static let signedRequest = "<?xml version='1.0' encoding='UTF-8'?>\n<sr:Request xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" schemaVersion=\"5.4\">\n  <sr:Header>\n    <sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-00-05:1001</sr:RequestID>\n    <sr:CommandVariant>1</sr:CommandVariant>\n    <sr:ServiceReference>11.2</sr:ServiceReference>\n    <sr:ServiceReferenceVariant>11.2</sr:ServiceReferenceVariant>\n  </sr:Header>\n  <sr:Body><sr:ReadFirmwareVersion/></sr:Body>\n<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\"/><ds:Reference URI=\"\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/></ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>HMjkBJCAX4IGvgkZm1KK5dhD5NpwY+7Z9e5x4R/WLsQ=</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>vYjwKXUtnJx7lmkxovw+11QpkCLXaU5+C22k/OGuvFod&#13;\nKPMK5F5l4dr3rAk6aYYGN2x/pSsWH9focyUwmLZX0A==</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>CN=smetsd DUIS supplier TEST,OU=87</ds:X509IssuerName><ds:X509SerialNumber>2001</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo></ds:Signature></sr:Request>"

    /// The public key of devices/keys/duis-supplier-TEST-cert.pem.
    static let supplierPublicKey = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1VvBYsFQ2Ru7GTo5EK/iBBVXOuj+\nmmlbehSMMVCTiadkU5eVBPMqLylfpnSPA6Jo+dG7ouJelyIWiYj98o9DNg==\n-----END PUBLIC KEY-----\n"

    func root(_ text: String) throws -> XMLElement { try XMLReader.parse(Array(text.utf8)) }

    func supplierKey() throws -> P256.Signing.PublicKey { try P256.Signing.PublicKey(pemRepresentation: Self.supplierPublicKey) }

    @Test func inclusiveCanonicalFormMatchesLxml() throws {
        let out = try XMLCanonicalizer.canonicalize(try root(Self.c14nInput), mode: .inclusive)
        #expect(String(decoding: out, as: UTF8.self) == "<sr:Request xmlns=\"urn:default\" xmlns:sr=\"urn:sr\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" a=\"1\" b=\"2\" schemaVersion=\"5.4\">\n  <sr:Header xmlns:q=\"urn:q\" z=\"&#xD;&#x9;x\" q:k=\"v\" sr:a=\"3\">A&amp;B &lt; &gt; \"q\"\n&lt;raw&gt; &amp; </sr:Header>\n  <Plain></Plain><inner xmlns=\"\"><deep xmlns=\"urn:default\"></deep></inner>\n  <sr:Body><sr:X>t</sr:X></sr:Body>\n</sr:Request>")
    }

    @Test func exclusiveCanonicalFormMatchesLxml() throws {
        let document = try root(Self.c14nInput)
        let out = try XMLCanonicalizer.canonicalize(document, mode: .exclusive)
        #expect(String(decoding: out, as: UTF8.self) == "<sr:Request xmlns:sr=\"urn:sr\" a=\"1\" b=\"2\" schemaVersion=\"5.4\">\n  <sr:Header xmlns:q=\"urn:q\" z=\"&#xD;&#x9;x\" q:k=\"v\" sr:a=\"3\">A&amp;B &lt; &gt; \"q\"\n&lt;raw&gt; &amp; </sr:Header>\n  <Plain xmlns=\"urn:default\"></Plain><inner><deep xmlns=\"urn:default\"></deep></inner>\n  <sr:Body><sr:X>t</sr:X></sr:Body>\n</sr:Request>")
        // An apex inside the document: the namespaces it uses come from its ancestors.
        let header = try XMLCanonicalizer.canonicalize(document.children[0], mode: .exclusive,
                                                       inScope: XMLCanonicalizer.scope(above: [0], in: document))
        #expect(String(decoding: header, as: UTF8.self) == "<sr:Header xmlns:q=\"urn:q\" xmlns:sr=\"urn:sr\" z=\"&#xD;&#x9;x\" q:k=\"v\" sr:a=\"3\">A&amp;B &lt; &gt; \"q\"\n&lt;raw&gt; &amp; </sr:Header>")
    }

    @Test func processingInstructionsAreRefusedNotDropped() throws {
        let document = try root("<a><?pi x?></a>")
        #expect(throws: XMLCanonicalError.self) { try XMLCanonicalizer.canonicalize(document, mode: .inclusive) }
        #expect(try root("<?xml version=\"1.0\"?><a/>").hasProcessingInstruction == false)
    }

    @Test func anIndependentlySignedRequestVerifies() throws {
        let named = try XMLSignature.verify(try root(Self.signedRequest), key: try supplierKey())
        #expect(named.serial == "2001")
        #expect(named.issuer == "CN=smetsd DUIS supplier TEST,OU=87")
        let parsed = try DUISParser.parseDocument(Array(Self.signedRequest.utf8))
        #expect(parsed.request.signed && !parsed.request.placeholderSignature)
    }

    @Test func tamperingAnywhereFails() throws {
        let key = try supplierKey()
        let tampered = [
            Self.signedRequest.replacingOccurrences(of: ":1001<", with: ":1002<"),  // the document
            Self.signedRequest.replacingOccurrences(of: "<sr:Body>", with: "<sr:Body> "),  // whitespace counts
            // An unused namespace declaration counts: the reference is canonicalised inclusively.
            Self.signedRequest.replacingOccurrences(of: "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" ", with: ""),
            Self.signedRequest.replacingOccurrences(of: "<ds:Reference URI=\"\">", with: "<ds:Reference URI=\"\" Id=\"r\">"),  // SignedInfo
        ]
        for text in tampered {
            #expect(text != Self.signedRequest)
            #expect(throws: XMLSignature.Failure.self) { try XMLSignature.verify(try root(text), key: key) }
        }
        let other = P256.Signing.PrivateKey().publicKey
        #expect(throws: XMLSignature.Failure.self) { try XMLSignature.verify(try root(Self.signedRequest), key: other) }
    }

    @Test func signThenVerifyAndTheSignatureIsLast() throws {
        let key = P256.Signing.PrivateKey()
        let response = #"<?xml version="1.0" encoding="UTF-8"?><sr:Response xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:ResponseCode>I0</sr:ResponseCode></sr:Header></sr:Response>"#
        let signed = try XMLSignature.sign(response, key: key, issuer: "CN=DCC,OU=89", serial: "1001")
        let document = try root(signed)
        #expect(document.children.last?.name == "Signature")
        let named = try XMLSignature.verify(document, key: key.publicKey)
        #expect(named == XMLSignature.KeyName(issuer: "CN=DCC,OU=89", serial: "1001"))
        let changed = signed.replacingOccurrences(of: ">I0<", with: ">I99<")
        #expect(throws: XMLSignature.Failure.self) { try XMLSignature.verify(try root(changed), key: key.publicKey) }
    }

    @Test func malformedSignaturesAreTypedFailures() throws {
        let key = try supplierKey()
        let cases = [
            Self.signedRequest.replacingOccurrences(of: "ecdsa-sha256", with: "rsa-sha256"),
            Self.signedRequest.replacingOccurrences(of: "xml-exc-c14n#", with: "xml-c14n11"),
            Self.signedRequest.replacingOccurrences(of: "<ds:SignatureValue>", with: "<ds:SignatureValue>AAAA"),
            Self.signedRequest.replacingOccurrences(of: "<ds:DigestValue>", with: "<ds:DigestValue>!"),
            Self.signedRequest.replacingOccurrences(of: "enveloped-signature", with: "base64"),
            Self.signedRequest.replacingOccurrences(of: "<ds:Signature ", with: "<?pi?><ds:Signature "),
            Self.signedRequest.replacingOccurrences(of: "<ds:SignedInfo>", with: "<ds:Object/><ds:SignedInfo>"),
        ]
        for text in cases {
            #expect(text != Self.signedRequest)
            #expect(throws: XMLSignature.Failure.self) { try XMLSignature.verify(try root(text), key: key) }
        }
    }

    /// A response signed by DCC Boxed's own signing tool (Java XML-DSig): `readfw-response-resigned.xml`
    /// in SmartDCCInnovation/dccboxed-signing-tool's test resources (commit e975f582), with the public
    /// half of that tool's published DCC test key (`dsp-xml-sign-90B3D51F30000002-ds.key.pem`). Its
    /// root declares two unused namespaces, so the digest matches only if the reference is
    /// canonicalised inclusively, as duis.md section 3 says.
    static let dccBoxedSigned = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?><sr:Response xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" xmlns:ns3=\"http://www.w3.org/2000/09/xmldsig#\" xmlns:ra=\"http://www.dccinterface.co.uk/ResponseAndAlert\" schemaVersion=\"5.4\"><sr:Header><sr:RequestID>90-B3-D5-1F-30-01-00-00:04-CD-15-00-FE-91-44-2A:1761857784919</sr:RequestID><sr:ResponseID>04-CD-15-00-FE-91-44-2A:90-B3-D5-1F-30-01-00-00:1761857784919</sr:ResponseID><sr:ResponseCode>I0</sr:ResponseCode><sr:ResponseDateTime>2025-10-30T20:56:25.804Z</sr:ResponseDateTime></sr:Header><sr:Body><sr:ResponseMessage><sr:ServiceReference>11.2</sr:ServiceReference><sr:ServiceReferenceVariant>11.2</sr:ServiceReferenceVariant><sr:GBCSPayload>3QAAAAAAAFURAAAAAN8JAgAAAZo26E3NCATNFQD+kUQqCJCz1R8wAAACABIAWZCz1R8wAQAAAAABmjboTFcR2iDoTc0AAAEJBAACAAABAQAApO39e11iD0WV3mqN</sr:GBCSPayload></sr:ResponseMessage></sr:Body><ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\"/><ds:Reference URI=\"\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/></ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>lthVhQEVHLQoCSZO8AasALnPzS5IxEu/nryE6pvDsnw=</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>6CpouVYmsjdIssmyv0nTK2xmr1fDbbS+0p0jAtdyyQt1niF6UoG+Qa00Bp618h2dNsHxzi8wyydR&#13;44omZ/wQWQ==</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>CN=Z1,OU=07</ds:X509IssuerName><ds:X509SerialNumber>20315062944123339095836004026371736578</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo></ds:Signature></sr:Response>"
    static let dccBoxedPublicKey = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEdS2xVB2CrcRDjF+Ifm2PIacFhMyO\nhY7RQGhdZ7nBdZSkRM5TEmIdyhNR2YfNZWsCpL2V8sFPp+AGLSRyJTKt9Q==\n-----END PUBLIC KEY-----\n"

    @Test func aResponseSignedByDCCBoxedsToolVerifies() throws {
        let key = try P256.Signing.PublicKey(pemRepresentation: Self.dccBoxedPublicKey)
        let named = try XMLSignature.verify(try root(Self.dccBoxedSigned), key: key)
        #expect(named == XMLSignature.KeyName(issuer: "CN=Z1,OU=07", serial: "20315062944123339095836004026371736578"))
        let changed = Self.dccBoxedSigned.replacingOccurrences(of: "<sr:ResponseCode>I0<", with: "<sr:ResponseCode>I99<")
        #expect(throws: XMLSignature.Failure.self) { try XMLSignature.verify(try root(changed), key: key) }
        #expect(throws: XMLSignature.Failure.self) { try XMLSignature.verify(try root(Self.dccBoxedSigned), key: try supplierKey()) }
    }

    @Test func theReaderKeepsWhatCanonicalisationNeeds() throws {
        let document = try root("<p:a xmlns:p=\"urn:p\" xmlns=\"urn:d\" p:x=\"1\">one\r\n<b/>two\r<c>&#13;</c>three</p:a>")
        #expect(document.prefix == "p")
        #expect(document.declarations == [XMLNamespaceDeclaration(prefix: "p", uri: "urn:p"), XMLNamespaceDeclaration(prefix: "", uri: "urn:d")])
        #expect(document.attributes.first?.prefix == "p")
        #expect(document.texts == ["one\n", "two\n", "three"], "CR LF and a lone CR are one LF")
        #expect(document.text == "one\ntwo\nthree")
        #expect(document.children[1].text == "\r", "a character reference to CR stays a CR")
        #expect(document.children[0].texts == [""])
        // Two attributes with one expanded name are not well-formed in namespaces.
        #expect(throws: XMLError.self) { try root("<a xmlns:p=\"urn:x\" xmlns:q=\"urn:x\" p:k=\"1\" q:k=\"2\"/>") }
    }
}
