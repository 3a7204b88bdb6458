import GRDB

/// A row's values, read by column name as `Row` reads them.
protocol NamedColumns {
    subscript<Value: DatabaseValueConvertible>(_ column: String) -> Value { get }
}

extension Row: NamedColumns {}

/// A row fetched by a cached statement, read by the column names its SQL gives, found in the
/// statement's list of them (made once and kept with the statement). A fetched `Row` finds a name by
/// lowercasing every column name before it, a new string each: the row each reserve reads has
/// twenty columns and is read by name about twenty-five times, and the lowercasing alone took 3 % of
/// the ledger's time, its allocations more. A name written otherwise than in the SQL is still found
/// as `Row` finds it.
struct StatementRow: NamedColumns {
    private let row: Row
    private let statement: Statement

    static func fetchOne(_ statement: Statement, arguments: StatementArguments) throws -> StatementRow? {
        try Row.fetchOne(statement, arguments: arguments).map { StatementRow(row: $0, statement: statement) }
    }

    subscript<Value: DatabaseValueConvertible>(_ column: String) -> Value {
        statement.columnNames.firstIndex(of: column).map { row[$0] } ?? row[column]
    }
}
