import SMETSCore
import SMETSWire

/// A device's OTA client state (ZCL OTA Upgrade client attributes).
public struct DeviceFirmwareState: Sendable, Hashable {
    public var fileOffset: UInt32 = 0
    public var downloadedFileVersion: UInt32?
    /// 0 normal, 1 downloading, 2 download complete, 3 waiting to upgrade.
    public var imageUpgradeStatus: UInt8 = 0
}

extension Engine {
    func firmwareState(_ id: EUI64, in state: State) -> DeviceFirmwareState { state.firmware[id] ?? DeviceFirmwareState() }

    /// OTA Upgrade cluster commands. The upgrade handshake is not served yet: nil lets the caller
    /// answer UNSUP_CLUSTER_COMMAND.
    func otaCommand(device: Device, source: EUI64, frame: ZCLFrame, reply: @escaping @Sendable ([ZCLFrame]) -> [OutgoingZCL]) -> ZCLHandling? {
        nil
    }
}
