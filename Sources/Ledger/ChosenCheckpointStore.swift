/// The A1111 checkpoint each key picked, kept where every gateway on the database reads it.
public protocol ChosenCheckpointStore: Sendable {
    func chosenCheckpoint(keyID: String) async throws(LedgerError) -> String?
    func chooseCheckpoint(_ name: String, keyID: String) async throws(LedgerError)
}
