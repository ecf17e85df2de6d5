import SMETSCore
import Testing
@testable import SMETSDUIS

/// Requests written from duis.md's examples.
enum Requests {
    static let supplier = "7C-E5-24-00-00-01-00-01"
    static let dcc = "90-B3-D5-1F-30-00-00-02"

    static func document(id: String, cv: Int, reference: String, variant: String, body: String, signature: String = "", version: String = "5.4") -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" schemaVersion="\(version)">
          <sr:Header>
            <sr:RequestID>\(id)</sr:RequestID>
            <sr:CommandVariant>\(cv)</sr:CommandVariant>
            <sr:ServiceReference>\(reference)</sr:ServiceReference>
            <sr:ServiceReferenceVariant>\(variant)</sr:ServiceReferenceVariant>
          </sr:Header>
          <sr:Body>\(body)</sr:Body>\(signature)
        </sr:Request>
        """
    }

    static let readFirmware = document(id: "\(supplier):00-1A-2B-FF-FE-00-E5-01:5120", cv: 1, reference: "11.2", variant: "11.2", body: "<sr:ReadFirmwareVersion/>")
}

@Suite struct DUISParserTests {
    func parse(_ text: String) throws(DUISRequestError) -> DUISRequest { try DUISParser.parse(Array(text.utf8)) }

    func failure(_ text: String) -> DUISRequestError.Kind? {
        do { _ = try parse(text); return nil } catch { return error.kind }
    }

    @Test func readFirmwareVersionEnvelope() throws {
        let request = try parse(Requests.readFirmware)
        #expect(request.schemaVersion == "5.4")
        #expect(request.requestID == RequestID(originator: EUI64(0x7CE5_2400_0001_0001), target: EUI64(0x001A_2BFF_FE00_E501), counter: 5120))
        #expect(request.commandVariant == 1 && request.serviceReference == "11.2" && request.service.variant == "11.2")
        #expect(request.body == .readFirmwareVersion(execution: nil))
        #expect(!request.signed)
    }

    @Test func requestIDForms() {
        #expect(RequestID(" 7c-e5-24-00-00-01-00-01:00-1A-2B-FF-FE-00-E5-01:18446744073709551615 ")?.counter == UInt64.max)
        #expect(RequestID("7C-E5-24-00-00-01-00-01:00-1A-2B-FF-FE-00-E5-01:0") != nil)
        for bad in ["7C-E5-24-00-00-01-00-01:00-1A-2B-FF-FE-00-E5-01:05", "7C-E5-24-00-00-01-00-01:00-1A-2B-FF-FE-00-E5-01:18446744073709551616",
                    "7CE5240000010001:00-1A-2B-FF-FE-00-E5-01:1", "7C-E5-24-00-00-01-00-01:00-1A-2B-FF-FE-00-E5-01", "a:b:c",
                    "7C-E5-24-00-00-01-00-01:00-1A-2B-FF-FE-00-E5-01:+1", "7C-E5-24-00-00-01-00-0G:00-1A-2B-FF-FE-00-E5-01:1"] {
            #expect(RequestID(bad) == nil, "accepted \(bad)")
        }
        #expect(RequestID("7c-e5-24-00-00-01-00-01:00-1a-2b-ff-fe-00-e5-01:7")?.description == "7C-E5-24-00-00-01-00-01:00-1A-2B-FF-FE-00-E5-01:7")
    }

    @Test func everyBodyOfTheSubset() throws {
        let device = "\(Requests.supplier):00-1A-2B-FF-FE-00-E5-01:9"
        let dccTarget = "\(Requests.supplier):\(Requests.dcc):9"
        func body(_ variant: String, _ reference: String, _ cv: Int, _ xml: String, target: String? = nil) throws -> DUISBody {
            try parse(Requests.document(id: target ?? device, cv: cv, reference: reference, variant: variant, body: xml)).body
        }
        #expect(try body("11.3", "11.3", 4, """
            <sr:ActivateFirmware><sr:ExecutionDateTime>2031-04-01T02:00:00Z</sr:ExecutionDateTime>
            <sr:FirmwareHash>7E3D1C9A5B2F48E6A1D0C7B9E2F4A6083C5D7E9F1A2B3C4D5E6F708192A3B4C5</sr:FirmwareHash></sr:ActivateFirmware>
            """) == .activateFirmware(execution: Timestamp(rfc3339: "2031-04-01T02:00:00Z"), hash: Hex.decode("7E3D1C9A5B2F48E6A1D0C7B9E2F4A6083C5D7E9F1A2B3C4D5E6F708192A3B4C5")!))
        #expect(try body("8.7.2", "8.7", 1, "<sr:JoinServiceNonCritical><sr:OtherDeviceID>00-1A-2B-FF-FE-00-E5-02</sr:OtherDeviceID></sr:JoinServiceNonCritical>")
                == .join(other: EUI64(0x001A_2BFF_FE00_E502)))
        #expect(try body("8.8.1", "8.8", 4, "<sr:UnjoinServiceCritical><sr:OtherDeviceID>00-1A-2B-FF-FE-00-E5-02</sr:OtherDeviceID></sr:UnjoinServiceCritical>")
                == .unjoin(other: EUI64(0x001A_2BFF_FE00_E502)))
        #expect(try body("8.9", "8.9", 1, "<sr:ReadDeviceLog><sr:ReadSecurityDetails/></sr:ReadDeviceLog>") == .readDeviceLog(execution: nil, securityDetails: true))
        #expect(try body("8.11", "8.11", 1, """
            <sr:UpdateHANDeviceLog><sr:DeviceID>00-1A-2B-FF-FE-00-77-01</sr:DeviceID><sr:RequestType>Add</sr:RequestType>
            <sr:AddDeviceToCHFWhitelist><sr:JoinTimePeriod>300</sr:JoinTimePeriod><sr:InstallCode>8A31C2D4E5F60718293A4B5C6D7E8F90</sr:InstallCode></sr:AddDeviceToCHFWhitelist>
            </sr:UpdateHANDeviceLog>
            """) == .updateHANDeviceLog(.init(execution: nil, device: EUI64(0x001A_2BFF_FE00_7701), add: true, joinTimePeriod: 300,
                                              installCode: Hex.decode("8A31C2D4E5F60718293A4B5C6D7E8F90"))))
        #expect(try body("8.13", "8.13", 8, """
            <sr:ReturnLocalCommandResponse><sr:OriginalRequestID>\(device)</sr:OriginalRequestID><sr:DeviceGBCSResponse>3QAAAA==</sr:DeviceGBCSResponse></sr:ReturnLocalCommandResponse>
            """, target: dccTarget) == .returnLocalCommandResponse(original: RequestID(device), response: [0xDD, 0, 0, 0]))
        #expect(try body("3.2", "3.2", 1, "<sr:RestrictAccessForChangeOfTenancy><sr:RestrictionDateTime>2031-06-30T23:00:00Z</sr:RestrictionDateTime></sr:RestrictAccessForChangeOfTenancy>")
                == .restrictAccessForChangeOfTenancy(execution: nil, restriction: Timestamp(rfc3339: "2031-06-30T23:00:00Z")!))
        #expect(try body("3.4", "3.4", 1, "<sr:UpdateSupplierName><sr:SupplierName>Lab Energy Ltd</sr:SupplierName><sr:SupplierTelephoneNumber>0800 555 0199</sr:SupplierTelephoneNumber></sr:UpdateSupplierName>")
                == .updateSupplierName(execution: nil, name: "Lab Energy Ltd", telephone: "0800 555 0199"))
        #expect(try body("6.23", "6.23", 1, """
            <sr:UpdateSecurityCredentialsCoS><sr:SupplierFloorSeqNumber>0</sr:SupplierFloorSeqNumber>
            <sr:SupplierReplacementCertificates><sr:DigitalSigningCertificate>MIIBrjCC</sr:DigitalSigningCertificate>
            </sr:SupplierReplacementCertificates><sr:CertificationPathCertificates><sr:Certificate>MIIBrjCC</sr:Certificate>
            </sr:CertificationPathCertificates><sr:ApplyTimeBasedCPVChecks>false</sr:ApplyTimeBasedCPVChecks>
            <sr:ImportMPxN>1900000000017</sr:ImportMPxN></sr:UpdateSecurityCredentialsCoS>
            """) == .updateSecurityCredentialsCoS(execution: nil, importMPxN: "1900000000017"))
        #expect(try body("2.2", "2.2", 1, "<sr:TopUpDevice><sr:UTRN>73951443011611684638</sr:UTRN></sr:TopUpDevice>") == .topUp(utrn: "73951443011611684638"))
        #expect(try body("4.1.1", "4.1", 1, "<sr:ReadInstantaneousImportRegisters/>") == .readInstantaneousImportRegisters(execution: nil))
        #expect(try body("8.2", "8.2", 8, "<sr:ReadInventory><sr:DeviceID>00-1A-2B-FF-FE-00-C4-01</sr:DeviceID></sr:ReadInventory>", target: dccTarget)
                == .readInventory(.device(EUI64(0x001A_2BFF_FE00_C401))))
        #expect(try body("12.2", "12.2", 8, """
            <sr:DevicePrenotification><sr:DeviceID>00-1A-2B-FF-FE-00-77-01</sr:DeviceID><sr:DeviceManufacturer>1A2B</sr:DeviceManufacturer><sr:DeviceModel>0000C0DE</sr:DeviceModel><sr:DeviceType>PPMID</sr:DeviceType><sr:SMETSCHTSVersion>SMETS V5.2</sr:SMETSCHTSVersion><sr:FirmwareVersion>00020000</sr:FirmwareVersion></sr:DevicePrenotification>
            """, target: dccTarget) == .devicePrenotification(.init(device: EUI64(0x001A_2BFF_FE00_7701), manufacturer: "1A2B", model: "0000C0DE", deviceType: "PPMID",
                                                                     smetsCHTSVersion: "SMETS V5.2", firmwareVersion: "00020000")))
        #expect(try body("11.4", "11.4", 8, """
            <sr:UpdatePPMIDFirmware><sr:FirmwareImage>HvHuCwABOAAAAB0S</sr:FirmwareImage><sr:FirmwareVersion>00020001</sr:FirmwareVersion>
            <sr:DeviceIDList>00-1A-2B-FF-FE-00-77-01,00-1A-2B-FF-FE-00-77-02</sr:DeviceIDList></sr:UpdatePPMIDFirmware>
            """, target: dccTarget) == .updateFirmware(image: [0x1E, 0xF1, 0xEE, 0x0B, 0x00, 0x01, 0x38, 0, 0, 0, 0x1D, 0x12], version: "00020001",
                                                     devices: [EUI64(0x001A_2BFF_FE00_7701), EUI64(0x001A_2BFF_FE00_7702)]))
        #expect(try body("11.3", "11.3", 5, "<sr:SignedPreCommand><sr:GBCSPayload>3wk=</sr:GBCSPayload></sr:SignedPreCommand>")
                == .signedPreCommand(execution: nil, payload: [0xDF, 0x09]))
    }

    @Test func signaturesAreNoticedNotVerified() throws {
        let signature = """
            <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/><ds:SignatureValue>ZGVmYXVsdA==</ds:SignatureValue></ds:Signature>
            """
        let request = try parse(Requests.document(id: "\(Requests.supplier):00-1A-2B-FF-FE-00-E5-01:1", cv: 1, reference: "11.2", variant: "11.2",
                                                  body: "<sr:ReadFirmwareVersion/>", signature: signature))
        #expect(request.signed && request.placeholderSignature)
    }

    @Test func refusedBeforeAnyDUISCheck() {
        let id = "\(Requests.supplier):00-1A-2B-FF-FE-00-E5-01:1"
        #expect(failure(Requests.document(id: id, cv: 1, reference: "11.3", variant: "11.2", body: "<sr:ReadFirmwareVersion/>")) == .invalid)
        #expect(failure(Requests.document(id: id, cv: 1, reference: "11.2", variant: "11.2", body: "<sr:ActivateFirmware/>")) == .invalid)
        #expect(failure(Requests.document(id: id, cv: 1, reference: "8.7", variant: "8.7.2", body: "<sr:JoinServiceNonCritical/>")) == .invalid)
        #expect(failure(Requests.document(id: id, cv: 1, reference: "7.1", variant: "7.1", body: "<sr:ReadEventOrSecurityLog/>")) == .unsupported)
        #expect(failure(Requests.document(id: "bad", cv: 1, reference: "11.2", variant: "11.2", body: "<sr:ReadFirmwareVersion/>")) == .invalid)
        #expect(failure(Requests.document(id: id, cv: 10, reference: "11.2", variant: "11.2", body: "<sr:ReadFirmwareVersion/>")) == .invalid)
        #expect(failure(Requests.document(id: id, cv: 1, reference: "11.2", variant: "11.2", body: "<sr:ReadFirmwareVersion/>", version: "4.0")) == .invalid)
        #expect(failure(Requests.document(id: id, cv: 1, reference: "2.2", variant: "2.2", body: "<sr:TopUpDevice><sr:UTRN>123</sr:UTRN></sr:TopUpDevice>")) == .invalid)
        #expect(failure("<sr:Response xmlns:sr='http://www.dccinterface.co.uk/ServiceUserGateway' schemaVersion='5.4'/>") == .invalid)
        #expect(failure("<!DOCTYPE x><x/>") == .doctype)
        #expect(failure("<x>&e;</x>") == .entity)
        #expect((try? DUISParser.parse(Array(Requests.readFirmware.utf8), limits: XMLLimits(maxBytes: 100))) == nil)
    }
}
