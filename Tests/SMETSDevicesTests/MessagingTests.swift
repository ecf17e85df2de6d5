import SMETSCore
import SMETSWire
import Testing
@testable import SMETSDevices

@Suite("Messaging")
struct MessagingTests {
    static let display = EUI64("00-DB-12-34-56-78-00-06")!
    static let now = Timestamp(unixMillis: 1_800_000_000_000)
    static let machine = Messaging(device: display)

    static func message(_ id: UInt32, control: UInt8 = 0, text: String? = "Hello") -> DisplayMessage {
        DisplayMessage(messageID: id, messageControl: control, startTime: 0, durationMinutes: 60, message: text)
    }

    @Test("a display keeps a message, answers SUCCESS and says it shows it")
    func displayMessage() {
        let actions = Self.machine.receive(.displayMessage(Self.message(7), now: Self.now))
        #expect(actions == [
            .persist(.save(Messaging.Message(messageID: 7, control: 0, startTime: 0, durationMinutes: 60, text: "Hello", receivedAt: Self.now))),
            .respond(.status(.success)),
            .event(.displayed(messageID: 7)),
        ])
        // A message with no text (the invalid string) is kept with empty text.
        #expect(Self.machine.receive(.displayMessage(Self.message(8, text: nil), now: Self.now)).first
            == .persist(.save(Messaging.Message(messageID: 8, control: 0, startTime: 0, durationMinutes: 60, text: "", receivedAt: Self.now))))
    }

    @Test("a message that asks for confirmation is confirmed at once, in the same batch")
    func confirmationRequired() {
        let actions = Self.machine.receive(.displayMessage(Self.message(9, control: 0x80), now: Self.now))
        #expect(actions.count == 4)
        #expect(actions[1] == .persist(.confirm(messageID: 9, at: Self.now)))
        #expect(actions[2] == .respond(.messageConfirmation(MessageConfirmation(messageID: 9, confirmationTime: Self.now.zigbeeUTC))))
    }

    @Test("cancelling a held message deletes it; one not held is NOT_FOUND and changes nothing")
    func cancelMessage() {
        #expect(Self.machine.receive(.cancelMessage(CancelMessage(messageID: 3), held: true)) == [.persist(.delete(messageID: 3)), .respond(.status(.success))])
        #expect(Self.machine.receive(.cancelMessage(CancelMessage(messageID: 3), held: false)) == [.respond(.status(.notFound))])
    }

    @Test("CancelAllMessages deletes every message")
    func cancelAll() {
        #expect(Self.machine.receive(.cancelAllMessages(CancelAllMessages())) == [.persist(.deleteAll), .respond(.status(.success))])
    }

    @Test("a meter repeats its last message since the Change of Tenancy; NOT_FOUND when there is none")
    func getLastMessage() {
        let old = Messaging.Message(Self.message(1, text: "old"), at: Timestamp(unixMillis: 1_000))
        let new = Messaging.Message(Self.message(2, text: "new"), at: Self.now)
        #expect(Self.machine.receive(.getLastMessage(sent: [old, new], tenancyStart: nil)) == [.respond(.displayMessage(new.command))])
        #expect(Self.machine.receive(.getLastMessage(sent: [new, old], tenancyStart: nil)) == [.respond(.displayMessage(old.command))])
        #expect(Self.machine.receive(.getLastMessage(sent: [new, old], tenancyStart: Timestamp(unixMillis: 2_000))) == [.respond(.displayMessage(new.command))])
        #expect(Self.machine.receive(.getLastMessage(sent: [old], tenancyStart: Timestamp(unixMillis: 2_000))) == [.respond(.status(.notFound))])
        #expect(Self.machine.receive(.getLastMessage(sent: [], tenancyStart: nil)) == [.respond(.status(.notFound))])
        #expect(!Messaging.Input.getLastMessage(sent: [], tenancyStart: nil).mayChangeStore)
    }

    @Test("a meter records a display's confirmation")
    func confirmation() {
        let confirmation = MessageConfirmation(messageID: 4, confirmationTime: 99)
        #expect(Self.machine.receive(.messageConfirmation(confirmation, now: Self.now)) == [.persist(.confirm(messageID: 4, at: Self.now)), .respond(.status(.success))])
    }

    @Test("a meter keeps a message before sending it")
    func sending() {
        #expect(Self.machine.receive(.sending(Self.message(5), now: Self.now)) == [.persist(.save(Messaging.Message(Self.message(5), at: Self.now))), .send])
    }

    @Test("when the store fails, every command answers FAILURE and a message the meter cannot keep is not sent")
    func storeFailed() {
        let inputs: [Messaging.Input] = [
            .displayMessage(Self.message(1), now: Self.now), .cancelMessage(CancelMessage(messageID: 1), held: true),
            .cancelAllMessages(CancelAllMessages()), .getLastMessage(sent: [], tenancyStart: nil),
            .messageConfirmation(MessageConfirmation(messageID: 1, confirmationTime: 0), now: Self.now),
        ]
        for input in inputs { #expect(Self.machine.storeFailed(input) == [.respond(.status(.failure))]) }
        #expect(Self.machine.storeFailed(.sending(Self.message(1), now: Self.now)).isEmpty)
    }
}
