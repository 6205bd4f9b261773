import AviaryCore
import AviaryPostgres
import Foundation

/// The one place a change of configuration runs, whoever asks for it — a REST route, a
/// dashboard button or the rollout leader: the command in its unit of work (validation,
/// revision, audit line with the actor, rollout history and notice, all committed together by
/// the store), then the effects of what committed. Controllers decode and encode only; the
/// dashboard and the leader call these same methods, so one change has one audit entry, one
/// notice and one reload wherever it came from.
///
/// Effects run after the commit: a change that committed is answered as committed, and this
/// replica serves it before the answer (the others hear `NOTIFY aviary_config`).
struct Changes: Sendable {
    let database: AviaryDatabase
    let feed: ConfigFeed
    /// Where rollout notices may go (`AVIARY_NOTIFY_HOSTS`); nil: anywhere.
    let notifyHosts: NotifyHosts?

    /// Who asks: an API key (REST and the dashboard) or the server itself (the rollout leader),
    /// audited with a null `actor_key_id`.
    enum Actor: Sendable {
        case key(String?)
        case server

        var keyID: String? {
            switch self {
            case .key(let id): return id
            case .server: return nil
            }
        }
    }

    // MARK: Experiments

    /// Runs `command` on experiment `key`; nil when a rollout decision came too late (the
    /// experiment changed since it was measured). A change of guardrail readings alone reloads
    /// nothing.
    func experiment(_ command: ExperimentCommand, key: String, by actor: Actor, now: Date = Date()) async throws -> ExperimentChange? {
        let change = try await database.experiments.execute(command, key: key, actor: actor.keyID, now: now, notifyHosts: notifyHosts)
        if change?.action != nil { await afterConfigurationCommitted() }
        return change
    }

    /// `experiment`, for callers that only change an experiment by asking: a command that
    /// changes nothing is a conflict.
    func experiment(_ command: ExperimentCommand, key: String, by actor: Actor) async throws -> Experiment {
        guard let change = try await experiment(command, key: key, by: actor, now: Date()) else {
            throw AviaryError.conflict("experiment \"\(key)\" changed meanwhile; try again")
        }
        return change.experiment
    }

    // MARK: Cohorts and metrics

    func put<Object: ConfigObject>(
        _ store: ConfigObjectStore<Object>, _ key: String, body: JSON, ifMatch: Int?, by actor: Actor
    ) async throws -> (Object, PutOutcome) {
        let result = try await store.put(key, body: body, ifMatch: ifMatch, actor: actor.keyID)
        await afterConfigurationCommitted()
        return result
    }

    func patch<Object: ConfigObject>(_ store: ConfigObjectStore<Object>, _ key: String, patch: JSON, ifMatch: Int?, by actor: Actor) async throws -> Object {
        let object = try await store.patch(key, patch: patch, ifMatch: ifMatch, actor: actor.keyID)
        await afterConfigurationCommitted()
        return object
    }

    func delete<Object: ConfigObject>(_ store: ConfigObjectStore<Object>, _ key: String, by actor: Actor) async throws {
        try await store.delete(key, actor: actor.keyID)
        await afterConfigurationCommitted()
    }

    // MARK: Opt-outs and keys

    /// Opts `units` out of (or, with `optOut` false, back into) every experiment that allows it.
    func optOut(_ optOut: Bool, units: [String]) async throws {
        if optOut { try await database.optOuts.optOut(units: units) } else { try await database.optOuts.optIn(units: units) }
        await afterConfigurationCommitted()
    }

    /// A new key, honoured by this server before the answer (docs/api.md: the others within the
    /// key refresh interval).
    func createKey(role: APIKeyRole, name: String, by actor: Actor) async throws -> (APIKey, secret: String) {
        let created = try await database.keys.create(role: role, name: name, actor: actor.keyID)
        try await afterKeysCommitted()
        return created
    }

    /// Revokes key `id`; it stops working on this server before the answer.
    func revokeKey(_ id: String, by actor: Actor) async throws {
        try await database.keys.revoke(id: id, actor: actor.keyID)
        try await afterKeysCommitted()
    }

    // MARK: Effects

    /// This replica reloads its snapshot before the caller answers. The reload has its own
    /// bound (`ConfigFeed.readLimit`); one that fails, or that the caller's deadline cuts, leaves
    /// the change committed and answered as such, and NOTIFY and the timer to catch up.
    private func afterConfigurationCommitted() async {
        await feed.reload()
    }

    /// This server's keys reload before the answer; a revoked key must stop working here at
    /// once, so a failure is the caller's.
    private func afterKeysCommitted() async throws {
        try await QueryDeadline.within(ConfigFeed.readLimit) { [authenticator = feed.authenticator, keys = database.keys] in
            try await authenticator.reload(from: keys)
        }
    }
}
