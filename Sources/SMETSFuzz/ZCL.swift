import SMETSCore
import SMETSDevices
import SMETSWire

extension FuzzTarget {
    /// ZCL frames as a device receives them, and every command payload decoder.
    ///
    /// Input: a selector byte (cluster in the low 3 bits, device type above), then a ZCL frame.
    /// Properties: the header decodes or fails at an offset inside the input; decode(encode(x)) == x
    /// for the frame, for every global and cluster command and for a typed ZCL value read from the
    /// payload; `DeviceCommand` routes the frame without trapping, and a command it decodes is the
    /// one the payload decoder gives.
    public static let zcl = FuzzTarget(
        name: "zcl",
        summary: "ZCLFrame, DeviceCommand routing, every global and cluster command decoder, ZCLValue; round trips"
    ) { bytes in
        var input = FuzzInput(bytes)
        let selector = input.byte()
        let clusters = [ZCLClusterID.basic, ZCLClusterID.otaUpgrade, ZCLClusterID.metering, ZCLClusterID.messaging,
                        ZCLClusterID.prepayment, ZCLClusterID.deviceManagement, 0x0B04, ZCLClusterID.messaging]
        let cluster = clusters[Int(selector & 0x07)]
        let deviceType = DeviceType.allCases[Int(selector >> 3) % DeviceType.allCases.count]
        let zcl = input.rest

        let frame: ZCLFrame
        do throws(WireError) {
            frame = try ZCLFrame(decoding: zcl)
        } catch {
            return checkError(error, inputCount: zcl.count, decoder: "ZCLFrame")
        }
        do throws(WireError) {
            let again = try ZCLFrame(decoding: frame.encoded())
            if again != frame { return "ZCLFrame: decode(encode(\(frame))) is \(again)" }
        } catch {
            return "ZCLFrame: encode(\(frame)) does not decode: \(error)"
        }

        let profile = selector & 0x40 != 0 && selector & 0x07 == 0x07 ? 0x0104 : ZCLProfileID.smartEnergy
        let routed = DeviceCommand(frame: frame, profile: profile, cluster: cluster, deviceType: deviceType)
        if let failure = checkRouted(routed, frame: frame) { return failure }

        for decoder in payloadDecoders {
            if let failure = decoder(frame.payload[...]) { return failure }
        }
        var reader = WireReader(frame.payload)
        do throws(WireError) {
            let value = try ZCLValue(decodingTypedFrom: &reader)
            var writer = WireWriter()
            value.encodeTyped(into: &writer)
            var again = WireReader(writer.bytes)
            let decoded = try ZCLValue(decodingTypedFrom: &again)
            if decoded != value { return "ZCLValue: decode(encode(\(value))) is \(decoded)" }
        } catch {
            return checkError(error, inputCount: frame.payload.count, decoder: "ZCLValue")
        }
        return nil
    }

    /// Every payload decoder, erased to "decode, check, and say what broke".
    private static let payloadDecoders: [@Sendable (ArraySlice<UInt8>) -> String?] = [
        roundTrip(ReadAttributes.self), roundTrip(ReadAttributesResponse.self), roundTrip(DefaultResponse.self),
        roundTrip(DisplayMessage.self), roundTrip(CancelMessage.self), roundTrip(CancelAllMessages.self),
        roundTrip(GetLastMessage.self), roundTrip(MessageConfirmation.self),
        roundTrip(PublishChangeOfTenancy.self), roundTrip(PublishChangeOfSupplier.self),
        roundTrip(ConsumerTopUp.self), roundTrip(ConsumerTopUpResponse.self), roundTrip(GetTopUpLog.self),
        roundTrip(PublishTopUpLog.self), roundTrip(GetDebtRepaymentLog.self), roundTrip(PublishDebtLog.self),
        roundTrip(ImageNotify.self), roundTrip(QueryNextImageRequest.self), roundTrip(QueryNextImageResponse.self),
        roundTrip(ImageBlockRequest.self), roundTrip(ImageBlockResponse.self),
        roundTrip(UpgradeEndRequest.self), roundTrip(UpgradeEndResponse.self),
    ]

    private static func roundTrip<Command: ZCLPayload>(_: Command.Type) -> @Sendable (ArraySlice<UInt8>) -> String? {
        { payload in
            let command: Command
            do throws(WireError) {
                command = try Command(decoding: payload)
            } catch {
                return checkError(error, inputCount: payload.count, decoder: "\(Command.self)")
            }
            let encoded = command.encoded()
            do throws(WireError) {
                let again = try Command(decoding: encoded)
                if again != command { return "\(Command.self): decode(encode(\(command))) is \(again)" }
            } catch {
                return "\(Command.self): encode(\(command)) = \(hex(encoded)) does not decode: \(error)"
            }
            return nil
        }
    }

    /// An error must name an offset inside the input; a truncation must name what is really left.
    static func checkError(_ error: WireError, inputCount: Int, decoder: String) -> String? {
        guard error.offset >= 0, error.offset <= inputCount else {
            return "\(decoder): \(error) names an offset outside the \(inputCount)-byte input"
        }
        if case let .truncated(_, offset, needed, available) = error {
            guard offset + available == inputCount, needed > available else {
                return "\(decoder): \(error) does not match the \(inputCount)-byte input"
            }
        }
        if error.description.isEmpty { return "\(decoder): an error without a description" }
        return nil
    }

    private static func checkRouted(_ routed: DeviceCommand, frame: ZCLFrame) -> String? {
        func same<C: ZCLPayload>(_ command: C) -> String? {
            (try? C(decoding: frame.payload)) == command ? nil : "DeviceCommand decoded \(command) unlike \(C.self)(decoding:)"
        }
        switch routed {
        case let .messaging(.displayMessage(command)): return same(command)
        case let .messaging(.cancelMessage(command)): return same(command)
        case let .messaging(.cancelAllMessages(command)): return same(command)
        case let .messaging(.messageConfirmation(command)): return same(command)
        case let .prepayment(.consumerTopUp(command)): return same(command)
        case let .prepayment(.getTopUpLog(command)): return same(command)
        case let .prepayment(.getDebtRepaymentLog(command)): return same(command)
        case let .changeOfTenancy(command): return same(command)
        case let .changeOfSupplier(command): return same(command)
        case let .readAttributes(_, ids): return (try? ReadAttributes(decoding: frame.payload))?.attributeIDs == ids ? nil : "Read Attributes IDs differ"
        default: return nil
        }
    }
}
