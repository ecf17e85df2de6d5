import SMETSCore
import SMETSWire

/// The Messaging cluster of one device: the client side of a display (IHD or PPMID: it shows,
/// cancels and confirms supplier messages) and the server side of a meter (it keeps the messages it
/// sent, answers GetLastMessage with the last one and records confirmations).
///
/// A value with no state of its own: messages are durable display data, so the executor reads what
/// an input needs inside its store transaction, asks the machine, commits the ``Change``s in that
/// same transaction, then sends and publishes. The executor's contract is ``Prepayment``'s: every
/// ``Action/persist(_:)`` of a batch in one transaction before anything is sent; when the store
/// fails, ``storeFailed(_:)`` instead (a FAILURE Default Response; a message the meter cannot keep
/// is not sent).
public struct Messaging: Sendable, Hashable {
    /// A supplier message as a device keeps it.
    public struct Message: Sendable, Hashable {
        public var messageID: UInt32
        public var control: UInt8
        public var startTime: UInt32
        public var durationMinutes: UInt16
        public var text: String
        public var receivedAt: Timestamp
        public init(messageID: UInt32, control: UInt8, startTime: UInt32, durationMinutes: UInt16, text: String, receivedAt: Timestamp) {
            self.messageID = messageID; self.control = control; self.startTime = startTime
            self.durationMinutes = durationMinutes; self.text = text; self.receivedAt = receivedAt
        }

        /// `command` as kept at `time`.
        public init(_ command: DisplayMessage, at time: Timestamp) {
            self.init(messageID: command.messageID, control: command.messageControl, startTime: command.startTime,
                      durationMinutes: command.durationMinutes, text: command.message ?? "", receivedAt: time)
        }

        /// The DisplayMessage that repeats this message.
        public var command: DisplayMessage {
            DisplayMessage(messageID: messageID, messageControl: control, startTime: startTime, durationMinutes: durationMinutes, message: text)
        }
    }

    /// Message control bit 7: the supplier asks the display to confirm the message.
    public static let confirmationRequired: UInt8 = 0x80

    /// The Messaging commands a device takes, decoded.
    public enum Command: Sendable, Hashable {
        // Client side (a display).
        case displayMessage(DisplayMessage)
        case cancelMessage(CancelMessage)
        case cancelAllMessages(CancelAllMessages)
        // Server side (a meter).
        case getLastMessage
        case messageConfirmation(MessageConfirmation)
    }

    public enum Input: Sendable, Hashable {
        /// A display receives a message at `now`.
        case displayMessage(DisplayMessage, now: Timestamp)
        /// A display is asked to cancel a message; `held` says whether it holds it.
        case cancelMessage(CancelMessage, held: Bool)
        /// A display is asked to cancel every message.
        case cancelAllMessages(CancelAllMessages)
        /// A meter is asked for its last message: `sent` are the messages it keeps, oldest first;
        /// `tenancyStart` the start of the current tenancy, if it changed (nothing from before it).
        case getLastMessage(sent: [Message], tenancyStart: Timestamp?)
        /// A display confirms a message the meter sent, at `now`.
        case messageConfirmation(MessageConfirmation, now: Timestamp)
        /// The meter is about to send `message` at `now` (from a rig or the control API): it keeps
        /// it first, so that GetLastMessage can repeat it.
        case sending(DisplayMessage, now: Timestamp)

        /// Whether this input's batch can hold a ``Action/persist(_:)``.
        public var mayChangeStore: Bool {
            switch self {
            case .displayMessage, .cancelMessage, .cancelAllMessages, .messageConfirmation, .sending: true
            case .getLastMessage: false
            }
        }
    }

    /// A durable change of the device's messages.
    public enum Change: Sendable, Hashable {
        case save(Message)
        case confirm(messageID: UInt32, at: Timestamp)
        case delete(messageID: UInt32)
        case deleteAll
    }

    public enum Event: Sendable, Hashable {
        /// A display shows a message.
        case displayed(messageID: UInt32)
    }

    public enum Action: Sendable, Hashable {
        case persist(Change)
        case respond(ZCLReply)
        case event(Event)
        /// The frame the meter was about to send may go (it is kept).
        case send
    }

    /// The device this cluster belongs to.
    public let device: EUI64

    public init(device: EUI64) { self.device = device }

    /// What the device does with one input.
    public func receive(_ input: Input) -> [Action] {
        switch input {
        case let .displayMessage(message, now):
            var actions: [Action] = [.persist(.save(Message(message, at: now)))]
            if message.messageControl & Self.confirmationRequired != 0 {
                // The display confirms at once (the emulated consumer always presses the button).
                actions.append(.persist(.confirm(messageID: message.messageID, at: now)))
                actions.append(.respond(.messageConfirmation(MessageConfirmation(messageID: message.messageID, confirmationTime: now.zigbeeUTC))))
            } else {
                actions.append(.respond(.status(.success)))
            }
            actions.append(.event(.displayed(messageID: message.messageID)))
            return actions
        case let .cancelMessage(cancel, held):
            guard held else { return [.respond(.status(.notFound))] }
            return [.persist(.delete(messageID: cancel.messageID)), .respond(.status(.success))]
        case .cancelAllMessages:
            return [.persist(.deleteAll), .respond(.status(.success))]
        case let .getLastMessage(sent, since):
            guard let last = sent.last(where: { since == nil || $0.receivedAt >= since! }) else { return [.respond(.status(.notFound))] }
            return [.respond(.displayMessage(last.command))]
        case let .messageConfirmation(confirmation, now):
            return [.persist(.confirm(messageID: confirmation.messageID, at: now)), .respond(.status(.success))]
        case let .sending(message, now):
            return [.persist(.save(Message(message, at: now))), .send]
        }
    }

    /// What the device does instead of `input`'s batch when the store could not be read for it or
    /// could not commit it: nothing kept, nothing published, and a message it cannot keep not sent.
    public func storeFailed(_ input: Input) -> [Action] {
        switch input {
        case .sending: []
        case .displayMessage, .cancelMessage, .cancelAllMessages, .getLastMessage, .messageConfirmation: [.respond(.status(.failure))]
        }
    }
}
