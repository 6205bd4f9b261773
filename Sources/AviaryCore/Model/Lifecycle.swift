/// The lifecycle actions of docs/api.md ("Experiments") and the only transitions they may make:
/// `draft → running ⇄ paused → stopped`, `running → rolled_back`.
public enum LifecycleAction: String, Sendable, CaseIterable, Codable {
    case start, pause, resume, stop, rollback

    /// The status after this action, or `nil` when the action is illegal from `status`.
    public func target(from status: ExperimentStatus) -> ExperimentStatus? {
        switch (self, status) {
        case (.start, .draft): .running
        case (.pause, .running): .paused
        case (.resume, .paused): .running
        case (.stop, .running), (.stop, .paused): .stopped
        case (.rollback, .running): .rolledBack
        default: nil
        }
    }

    /// The statuses this action may start from, for error messages.
    public var allowedFrom: [ExperimentStatus] {
        ExperimentStatus.allCases.filter { target(from: $0) != nil }
    }
}
