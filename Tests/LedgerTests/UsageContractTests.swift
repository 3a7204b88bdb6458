import GenerationCore
import TestSupport
import Testing

@testable import Ledger

/// What a usage report asks of a store: the latest few events, and totals the store sums itself,
/// so that a window of millions of events is never read whole. Every answer is checked against
/// the same figures worked out here from every event.
@Suite("Ledger contract: usage")
struct UsageContractTests {
    /// Events of two members of a team and an outsider, over three models and two dialects, several
    /// in the same millisecond (their order is the order recorded).
    static func record(_ ledger: any Ledger) async throws -> (events: [UsageEvent], team: Team, member: String) {
        let team = try await ledger.createTeam(name: "video")
        let (first, _) = try await ledger.createKey(NewKey(name: "first", teamID: team.id))
        let (second, _) = try await ledger.createKey(NewKey(name: "second", teamID: team.id))
        let (outsider, _) = try await ledger.createKey(NewKey(name: "outsider"))
        let keys = [first.id, second.id, outsider.id]
        var events: [UsageEvent] = []
        for index in 0..<60 {
            let event = UsageEvent(
                keyID: keys[index % 3], model: ["sdxl", "flux", "sd3"][index % 5 % 3], dialect: index % 4 == 0 ? "segmind" : "openai",
                status: index % 7 == 0 ? 406 : 200, cost: Credits(microCredits: index % 7 == 0 ? 0 : Int64(index) * 1_250),
                durationMilliseconds: Int64(index), backend: "local", requestID: "r\(index)", at: Int64(index / 3) * 500)
            try await ledger.record(event)
            events.append(event)
        }
        return (events, Team(id: team.id, members: [first.id, second.id]), first.id)
    }

    struct Team {
        let id: String
        let members: Set<String>
    }

    @Test(arguments: LedgerStore.available)
    func theLatestEventsComeOldestFirstAndAsManyAsAsked(store: LedgerStore) async throws {
        let (ledger, _) = try await store.make(clock: ManualClock())
        let (events, team, member) = try await Self.record(ledger)
        let scopes = [
            UsageScope(from: 0, to: 100_000), UsageScope(from: 1_000, to: 7_000), UsageScope(keyID: member, from: 0, to: 100_000),
            UsageScope(teamID: team.id, from: 2_000, to: 100_000),
        ]
        for scope in scopes {
            let inScope = events.filter { Self.contains(scope, $0, team: team) }
            for limit in [0, 1, 4, inScope.count, inScope.count + 10] {
                #expect(try await ledger.usage(scope, latest: limit) == Array(inScope.suffix(limit)), "\(scope), latest \(limit)")
            }
        }
    }

    @Test(arguments: LedgerStore.available)
    func totalsAreSummedPerBucketAndPerColumnAsked(store: LedgerStore) async throws {
        let (ledger, _) = try await store.make(clock: ManualClock())
        let (events, team, member) = try await Self.record(ledger)
        let groupings: [UsageColumns] = [[], .key, .model, [.key, .dialect], [.key, .model, .dialect]]
        let cutLists: [[Timestamp]] = [[], [2_500], [1_000, 1_001, 4_000, 9_000], [500, 8_000, 20_000]]
        let scopes = [
            UsageScope(from: 0, to: 100_000), UsageScope(from: 1_000, to: 7_000), UsageScope(keyID: member, from: 0, to: 100_000),
            UsageScope(teamID: team.id, from: 1_500, to: 100_000),
        ]
        for scope in scopes {
            for columns in groupings {
                for cuts in cutLists {
                    let expected = Self.totals(
                        events.filter { Self.contains(scope, $0, team: team) }, by: columns, cuts: cuts)
                    let totals = try await ledger.usageTotals(scope, by: columns, cuts: cuts)
                    #expect(Self.sorted(totals) == Self.sorted(expected), "\(scope) by \(columns.rawValue) cut at \(cuts)")
                }
            }
        }
        #expect(try await ledger.usageTotals(UsageScope(from: 50_000, to: 60_000), by: .key, cuts: []).isEmpty)
    }

    // MARK: The figures, from every event

    private static func contains(_ scope: UsageScope, _ event: UsageEvent, team: Team) -> Bool {
        (scope.keyID.map { $0 == event.keyID } ?? true) && (scope.teamID.map { $0 == team.id && team.members.contains(event.keyID) } ?? true)
            && scope.from <= event.at && event.at < scope.to
    }

    private static func totals(_ events: [UsageEvent], by columns: UsageColumns, cuts: [Timestamp]) -> [UsageTotal] {
        var totals: [UsageTotal] = []
        for event in events {
            let bucket = cuts.filter { $0 <= event.at }.count
            let total = UsageTotal(
                bucket: bucket, keyID: columns.contains(.key) ? event.keyID : nil, model: columns.contains(.model) ? event.model : nil,
                dialect: columns.contains(.dialect) ? event.dialect : nil, requests: 1, microCredits: Int128(event.cost.microCredits))
            if let index = totals.firstIndex(where: {
                ($0.bucket, $0.keyID, $0.model, $0.dialect) == (total.bucket, total.keyID, total.model, total.dialect)
            }) {
                totals[index].requests += 1
                totals[index].microCredits += total.microCredits
            } else {
                totals.append(total)
            }
        }
        return totals
    }

    private static func sorted(_ totals: [UsageTotal]) -> [UsageTotal] {
        totals.sorted {
            ($0.bucket, $0.keyID ?? "", $0.model ?? "", $0.dialect ?? "") < ($1.bucket, $1.keyID ?? "", $1.model ?? "", $1.dialect ?? "")
        }
    }
}
