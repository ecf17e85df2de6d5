import SMETSCore
import SMETSWire

/// The OTA Upgrade server of a Communications Hub: the images it offers its client devices (one
/// offer per client), and its answers to their queries, block requests and upgrade ends.
///
/// A value, as ``OTAClient``: ``receive(_:now:)`` takes one input and returns the actions. Nothing
/// it does is durable (an offer lives as long as the push that made it), so it never asks for a commit.
public struct OTAServer: Sendable, Hashable {
    /// When the client is to activate an image it took: what the Upgrade End Response says.
    public enum ActivationTime: Sendable, Hashable {
        /// Upgrade time 0.
        case now
        /// Upgrade time `at` (Zigbee UTC), with the hub's current time beside it.
        case at(Timestamp)
        /// Upgrade time 0xFFFFFFFF: wait for a later command.
        case later
    }

    /// An image offered to one client.
    public struct Offer: Sendable, Hashable {
        /// The whole OTA file, as it is served block by block.
        public var file: [UInt8]
        public var header: OTAImageHeader
        /// SHA-256 of the Manufacturer Image, lowercase hex.
        public var hash: String
        public var activation: ActivationTime
        /// The status of the client's Upgrade End Request, once it sent one.
        public internal(set) var endStatus: UInt8?

        public init(file: [UInt8], header: OTAImageHeader, hash: String, activation: ActivationTime) {
            self.file = file; self.header = header; self.hash = hash; self.activation = activation
        }

        /// The Image Notify that announces this offer.
        public var imageNotify: ImageNotify {
            ImageNotify(queryJitter: 100, manufacturerCode: header.manufacturerCode, imageType: header.imageType, newFileVersion: header.fileVersion)
        }
    }

    /// The OTA client's commands, as a server receives them.
    public enum ClientCommand: Sendable, Hashable {
        case queryNextImageRequest(QueryNextImageRequest)
        case imageBlockRequest(ImageBlockRequest)
        case upgradeEndRequest(UpgradeEndRequest)
    }

    public enum Input: Sendable, Hashable {
        /// Serve `offer` to `client` (replacing an earlier offer) and tell it with Image Notify.
        case offer(Offer, to: EUI64)
        /// A command from `client`.
        case command(ClientCommand, from: EUI64)
    }

    /// The server's answers to a command, sent with the command's sequence number.
    public enum Response: Sendable, Hashable {
        case queryNextImageResponse(QueryNextImageResponse)
        case imageBlockResponse(ImageBlockResponse)
        case upgradeEndResponse(UpgradeEndResponse)
        /// A Default Response (a SUCCESS is left out when the command disabled it).
        case status(ZCLStatus)
    }

    public enum Event: Sendable, Hashable {
        /// A client's Upgrade End Request.
        case upgradeEnd(client: EUI64, status: UInt8, fileVersion: UInt32)
    }

    public enum Action: Sendable, Hashable {
        /// An Image Notify to `client`, a new transaction with sequence number `sequence`.
        case notify(ImageNotify, to: EUI64, sequence: UInt8)
        /// The answer to the command just received.
        case respond(Response)
        case event(Event)
    }

    /// The images offered, by client.
    public private(set) var offers: [EUI64: Offer] = [:]
    /// The sequence number of the server's last transaction of its own (an Image Notify).
    public private(set) var sequence: UInt8

    /// A server that offers nothing; its first Image Notify has sequence number `sequence + 1`.
    public init(sequence: UInt8 = 0) { self.sequence = sequence }

    /// Stops serving `client`; returns what it was offered, with the status it ended with.
    public mutating func withdraw(_ client: EUI64) -> Offer? { offers.removeValue(forKey: client) }

    /// Takes one input at `now` (the virtual clock, the Upgrade End Response's current time).
    public mutating func receive(_ input: Input, now: Timestamp) -> [Action] {
        switch input {
        case let .offer(offer, client):
            offers[client] = offer
            sequence &+= 1
            return [.notify(offer.imageNotify, to: client, sequence: sequence)]
        case let .command(.queryNextImageRequest(request), client):
            return [.respond(.queryNextImageResponse(query(request, from: client)))]
        case let .command(.imageBlockRequest(request), client):
            return [.respond(.imageBlockResponse(block(request, from: client)))]
        case let .command(.upgradeEndRequest(request), client):
            return upgradeEnd(request, from: client, now: now)
        }
    }

    /// Query Next Image: the offer, if its manufacturer (or the wildcard) and image type match.
    private func query(_ request: QueryNextImageRequest, from client: EUI64) -> QueryNextImageResponse {
        guard let offer = offers[client] else { return .failure(.noImageAvailable) }
        let header = offer.header
        guard header.manufacturerCode == request.manufacturerCode || header.isWildcardManufacturer,
              header.imageType == request.imageType else { return .failure(.noImageAvailable) }
        return .success(manufacturerCode: header.manufacturerCode, imageType: header.imageType, fileVersion: header.fileVersion,
                        imageSize: UInt32(truncatingIfNeeded: offer.file.count))
    }

    /// Image Block: the data from the offset asked, at most the size asked; ABORT for anything
    /// but the offered image or an offset inside it.
    private func block(_ request: ImageBlockRequest, from client: EUI64) -> ImageBlockResponse {
        guard let offer = offers[client] else { return .failure(.noImageAvailable) }
        let header = offer.header
        guard header.manufacturerCode == request.manufacturerCode, header.imageType == request.imageType,
              header.fileVersion == request.fileVersion, Int(request.fileOffset) < offer.file.count, request.maximumDataSize > 0 else {
            return .failure(.abort)
        }
        let start = Int(request.fileOffset)
        let end = min(offer.file.count, start + Int(request.maximumDataSize))
        return .success(manufacturerCode: header.manufacturerCode, imageType: header.imageType, fileVersion: header.fileVersion,
                        fileOffset: request.fileOffset, data: Array(offer.file[start..<end]))
    }

    /// Upgrade End Request: note the status; after SUCCESS, say when to activate.
    private mutating func upgradeEnd(_ request: UpgradeEndRequest, from client: EUI64, now: Timestamp) -> [Action] {
        let event = Action.event(.upgradeEnd(client: client, status: request.statusCode, fileVersion: request.fileVersion))
        guard offers[client] != nil else { return [event, .respond(.status(.success))] }
        offers[client]?.endStatus = request.statusCode
        guard request.statusCode == ZCLStatus.success.rawValue, let offer = offers[client] else { return [event, .respond(.status(.success))] }
        let upgradeTime: UInt32 = switch offer.activation {
        case .now: 0
        case .at(let time): time.zigbeeUTC
        case .later: UpgradeEndResponse.waitForUpgradeCommand
        }
        let response = UpgradeEndResponse(manufacturerCode: offer.header.manufacturerCode, imageType: offer.header.imageType,
                                          fileVersion: offer.header.fileVersion, currentTime: now.zigbeeUTC, upgradeTime: upgradeTime)
        return [event, .respond(.upgradeEndResponse(response))]
    }
}
