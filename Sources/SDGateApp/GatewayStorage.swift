package import Ledger

/// Everything the gateway keeps in its database: keys and credits, jobs, webhooks, alert states. Both ledgers
/// keep all three in one database, so the composition root opens one value that serves every
/// part, and no part has to ask a ledger what else it is.
package protocol GatewayStorage: Ledger, JobStore, WebhookStore, AlertStore {}

extension SQLiteLedger: GatewayStorage {}
extension PostgresLedger: GatewayStorage {}
