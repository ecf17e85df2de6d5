import SMETSCore
import Testing
@testable import SMETSDUIS

@Suite struct DUISResponseTests {
    let request = try! DUISParser.parse(Array(Requests.readFirmware.utf8))
    let time = Timestamp(rfc3339: "2031-03-01T10:00:02.48Z")!

    /// duis.md §4's example, byte for byte but for the XML declaration.
    @Test func deviceResponseAsTheSpecWritesIt() {
        let response = DUISResponse.deviceResponse(to: request, code: .success, at: time, content: .gbcsPayload([0xDD, 0, 0, 0, 0, 0, 0, 0x45, 0x11, 0, 0, 0, 0, 0xDF, 0x09, 0x02]))
        #expect(response.xml == #"<?xml version="1.0" encoding="UTF-8"?>"#
            + #"<sr:Response xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header>"#
            + "<sr:RequestID>7C-E5-24-00-00-01-00-01:00-1A-2B-FF-FE-00-E5-01:5120</sr:RequestID>"
            + "<sr:ResponseID>00-1A-2B-FF-FE-00-E5-01:7C-E5-24-00-00-01-00-01:5120</sr:ResponseID>"
            + "<sr:ResponseCode>I0</sr:ResponseCode><sr:ResponseDateTime>2031-03-01T10:00:02.480Z</sr:ResponseDateTime></sr:Header>"
            + "<sr:Body><sr:ResponseMessage><sr:ServiceReference>11.2</sr:ServiceReference><sr:ServiceReferenceVariant>11.2</sr:ServiceReferenceVariant>"
            + "<sr:GBCSPayload>3QAAAAAAAEURAAAAAN8JAg==</sr:GBCSPayload></sr:ResponseMessage></sr:Body></sr:Response>")
    }

    /// Element order checked against the V5.4 XSD's Response, ResponseMessage and DSPInventory Device
    /// sequences (DUIS Schema V5.4.xsd in SmartDCCInnovation/dccboxed-signing-tool).
    @Test func inventoryOrderFollowsTheXSD() throws {
        let entry = InventoryEntry(deviceID: EUI64(0x00DB_1234_5678_0005), deviceType: "PPMID", status: "Commissioned", manufacturer: "1234", model: "0000A001",
                                   smetsCHTSVersion: "SMETS V5.2", firmwareVersion: "01020300", firmwareVersionStatus: "Active", cplStatus: "Active",
                                   dateCommissioned: "2026-01-01Z", cspRegion: "Central", gbcsVersion: "4.2")
        let response = DUISResponse.reply(to: request, code: .success, at: time, content: .inventory([entry]))
        let root = try XMLReader.parse(Array(response.xml.utf8))
        #expect(root.children.map(\.name) == ["Header", "Body"])
        #expect(root.children[0].children.map(\.name) == ["RequestID", "ResponseCode", "ResponseDateTime"])
        let message = root.children[1].children[0]
        #expect(message.children.map(\.name) == ["ServiceReference", "ServiceReferenceVariant", "DSPInventory"])
        #expect(message.children[2].children[0].children.map(\.name) == [
            "DeviceID", "DeviceType", "DeviceStatus", "DeviceManufacturer", "DeviceModel", "SMETSCHTSVersion", "DeviceFirmwareVersion",
            "DeviceFirmwareVersionStatus", "CPLStatus", "DateCommissioned", "CSPRegion", "DeviceGBCSVersion",
        ])
    }

    @Test func preCommandAndFutureDatedAlertShapes() throws {
        let pre = try XMLReader.parse(Array(DUISResponse.reply(to: request, code: .success, at: time, content: .preCommand(gbcsVersion: "4.2", payload: [0xDF])).xml.utf8))
        #expect(pre.children[1].children[0].children[2].children.map(\.name) == ["GBCSVersion", "GBCSPayload"])
        let alert = try XMLReader.parse(Array(DUISResponse.deviceResponse(to: request, code: .success, at: time,
                                                                             content: .futureDatedAlert(code: "8F66", payload: [0xDF], instruction: 1, totalInstructions: 1)).xml.utf8))
        #expect(alert.children[1].children[0].children[2].children.map(\.name) == ["FutureDatedAlertCode", "GBCSPayload", "InstructionNumber", "TotalCommandInstructions"])
    }

    /// DCCAlertMessage (V5.4 XSD): DCCAlertCode then DCCAlert's choice, each in its sequence's order;
    /// the header only a ResponseID `<DCC>:<user>:<counter>`.
    @Test func dccAlertShapes() throws {
        let dcc = EUI64(0x90B3_D51F_3000_0002), user = EUI64(0x90B3_D51F_3001_0000), ppmid = EUI64(0x00DB_1234_5678_0005)
        let upgrade = DUISResponse.dccAlert(schemaVersion: "5.4", dcc: dcc, user: user, counter: 77, at: time, alertCode: "N42",
                                            alert: .ppmidFirmwareUpgrade(device: ppmid, deviceAlertCode: "8F8B", timestamp: time,
                                                                         version: FirmwareVersion(hex: "01030000")!, success: false))
        let root = try XMLReader.parse(Array(upgrade.xml.utf8))
        #expect(root.children[0].children.map(\.name) == ["ResponseID", "ResponseCode", "ResponseDateTime"])
        #expect(root.children[0].children[0].text == "90-B3-D5-1F-30-00-00-02:90-B3-D5-1F-30-01-00-00:77")
        let message = root.children[1].children[0]
        #expect(message.name == "DCCAlertMessage" && message.children.map(\.name) == ["DCCAlertCode", "DCCAlert"])
        let alert = message.children[1].children[0]
        #expect(alert.name == "PPMIDAlert" && alert.children.map(\.name) == ["DeviceID", "DeviceAlertCode", "Timestamp", "PPMIDFirmwareUpgradeAlert"])
        #expect(alert.children[3].children.map(\.text) == ["01030000", "ActivationFailure"])
        let failure = DUISResponse.dccAlert(schemaVersion: "5.4", dcc: dcc, user: user, counter: 78, at: time, alertCode: "N12",
                                            alert: .firmwareDistributionFailure(updateRequest: request.requestID, meters: [ppmid, dcc]))
        let distribution = try XMLReader.parse(Array(failure.xml.utf8)).children[1].children[0].children[1].children[0]
        #expect(distribution.name == "FirmwareDistributionFailure" && distribution.children.map(\.name) == ["UpdateFirmwareRequestID", "MeterIDs"])
        #expect(distribution.children[1].text == "00-DB-12-34-56-78-00-05,90-B3-D5-1F-30-00-00-02")
    }

    @Test func textIsEscaped() {
        #expect(escape("a<b&c>") == "a&lt;b&amp;c&gt;")
        #expect(DUISDateTime.format(Timestamp(unixMillis: 5)) == "1970-01-01T00:00:00.005Z")
    }
}

@Suite struct DUISChecksTests {
    func request(cv: Int, variant: String = "11.2", reference: String = "11.2", body: String = "<sr:ReadFirmwareVersion/>",
                 target: String = "00-1A-2B-FF-FE-00-E5-01") throws -> DUISRequest {
        try DUISParser.parse(Array(Requests.document(id: "\(Requests.supplier):\(target):1", cv: cv, reference: reference, variant: variant, body: body).utf8))
    }

    @Test func commandVariantAgainstPathThenVariant() throws {
        #expect(DUISChecks.commandVariant(try request(cv: 1), path: .transform)?.code == .wrongService)
        #expect(DUISChecks.commandVariant(try request(cv: 1), path: .sendCommand) == nil)
        #expect(DUISChecks.commandVariant(try request(cv: 4), path: .transform)?.code == .commandVariant)
        #expect(DUISChecks.commandVariant(try request(cv: 3), path: .sendCommand)?.code == .commandVariant)
        #expect(DUISChecks.commandVariant(try request(cv: 9), path: .sendCommand)?.code == .commandVariant)
        #expect(DUISChecks.commandVariant(try request(cv: 8), path: .sendCommand)?.code == .wrongService)
        let activate = "<sr:ActivateFirmware><sr:FirmwareHash>\(String(repeating: "00", count: 32))</sr:FirmwareHash></sr:ActivateFirmware>"
        #expect(DUISChecks.commandVariant(try request(cv: 4, variant: "11.3", reference: "11.3", body: activate), path: .transform) == nil)
        #expect(DUISChecks.commandVariant(try request(cv: 5, variant: "11.3", reference: "11.3", body: activate), path: .sendCommand)?.code == .commandVariant)
        let signed = "<sr:SignedPreCommand><sr:GBCSPayload>3w==</sr:GBCSPayload></sr:SignedPreCommand>"
        #expect(DUISChecks.commandVariant(try request(cv: 5, variant: "11.3", reference: "11.3", body: signed), path: .sendCommand) == nil)
    }

    @Test func targetExistsThenTypeThenStatus() throws {
        let dcc = EUI64("90-B3-D5-1F-30-00-00-02")!
        let read = try request(cv: 1)
        #expect(DUISChecks.target(read, dccID: dcc) { _ in nil }?.code == .noSuchDevice)
        #expect(DUISChecks.target(read, dccID: dcc) { _ in TargetView(type: .ihd, status: .commissioned) }?.code == .deviceType)
        #expect(DUISChecks.target(read, dccID: dcc) { _ in TargetView(type: .ppmid, status: .decommissioned) }?.code == .deviceStatus)
        #expect(DUISChecks.target(read, dccID: dcc) { _ in TargetView(type: .ppmid, status: .commissioned, blocked: "interim") }?.code == .deviceStatus)
        #expect(DUISChecks.target(read, dccID: dcc) { _ in TargetView(type: .ppmid, status: .commissioned) } == nil)
        let inventory = try request(cv: 8, variant: "8.2", reference: "8.2", body: "<sr:ReadInventory><sr:UPRN>1</sr:UPRN></sr:ReadInventory>")
        #expect(DUISChecks.target(inventory, dccID: dcc) { _ in nil }?.code == .noSuchDevice)
        let toDCC = try request(cv: 8, variant: "8.2", reference: "8.2", body: "<sr:ReadInventory><sr:UPRN>1</sr:UPRN></sr:ReadInventory>", target: dcc.description)
        #expect(DUISChecks.target(toDCC, dccID: dcc) { _ in nil } == nil)
    }
}
