import Testing
@testable import SystemdKit

struct SystemdLoggingTests {
    let stderrIdentity = FileIdentity(device: 8, inode: 1234)

    @Test func parsesJournalStream() {
        #expect(FileIdentity(journalStream: "8:1234") == FileIdentity(device: 8, inode: 1234))
        #expect(FileIdentity(journalStream: "8:") == nil)
        #expect(FileIdentity(journalStream: "x:1") == nil)
        #expect(FileIdentity(journalStream: "1:2:3") == nil)
    }

    @Test func journalWhenStandardErrorIsTheJournalStream() {
        #expect(SystemdLogging.shouldUseJournal(
            environment: ["JOURNAL_STREAM": "8:1234"], standardErrorIdentity: stderrIdentity,
            journalSocketExists: false))
    }

    @Test func textWhenStandardErrorWasRedirected() {
        #expect(!SystemdLogging.shouldUseJournal(
            environment: ["JOURNAL_STREAM": "8:999"], standardErrorIdentity: stderrIdentity,
            journalSocketExists: false))
        #expect(!SystemdLogging.shouldUseJournal(
            environment: ["JOURNAL_STREAM": "8:1234"], standardErrorIdentity: nil,
            journalSocketExists: true))
    }

    @Test func journalForAUnitWhenTheSocketExists() {
        #expect(SystemdLogging.shouldUseJournal(
            environment: ["INVOCATION_ID": "0123abcd"], standardErrorIdentity: stderrIdentity,
            journalSocketExists: true))
        #expect(!SystemdLogging.shouldUseJournal(
            environment: ["INVOCATION_ID": "0123abcd"], standardErrorIdentity: stderrIdentity,
            journalSocketExists: false))
    }

    @Test func textOutsideSystemd() {
        #expect(!SystemdLogging.shouldUseJournal(
            environment: [:], standardErrorIdentity: stderrIdentity, journalSocketExists: true))
    }

    @Test func explicitPreferenceWins() {
        #expect(SystemdLogging.chooseBackend(preferJournal: true, format: .json) == .journal)
        #expect(SystemdLogging.chooseBackend(preferJournal: false, format: .json) == .text(.json))
    }

    @Test func handlersMatchTheBackend() {
        let journal = SystemdLogging.makeHandler(
            backend: .journal, label: "a", identifier: "smetsd", level: .debug, metadataProvider: nil)
        #expect((journal as? JournaldLogHandler)?.identifier == "smetsd")
        #expect(journal.logLevel == .debug)
        let text = SystemdLogging.makeHandler(
            backend: .text(.json), label: "a", identifier: "smetsd", level: .info, metadataProvider: nil)
        #expect((text as? TextLogHandler)?.format == .json)
    }
}
