/// A command other than `serve` named a SQLite ledger that is not there.
package struct NoLedgerError: Error, CustomStringConvertible {
    package let path: String
    package var description: String {
        "no ledger at \(path): `sdgate serve` creates it on its first start; check ledger.database (SDGATE_LEDGER_DATABASE), "
            + "data_dir (SDGATE_DATA_DIR) and the folder the command runs in"
    }
}
