import AviaryCore
import Foundation

// A/A rollouts: how often a guardrail rolls back a canary that is no different from the
// control, with a threshold guardrail and with a sequential one (docs/statistics.md, "Guardrails
// that do not cry wolf"). Run by scripts/simulate-guardrails on a release build; prints a
// Markdown table, one row per traffic and bound.
//
//   AviarySimulation [rollouts, default 1000]

let base = GuardrailSimulation.Settings()
let rollouts = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? base.rollouts

func percent(_ x: Double) -> String { String(format: "%.1f %%", x * 100) }

print("\(rollouts) A/A rollouts per row: steps \(base.steps.map { String(Int($0)) }.joined(separator: " → ")) %, "
    + "\(base.ticksPerStep) ticks a step, error rate \(base.errorRate) in both groups, sequential_tuning \(Int(base.sequentialTuning)), "
    + "seed \(base.seed).")
print("")
print("| units a tick | guardrail on error_rate | false rollbacks, threshold | false rollbacks, sequential |")
print("|---|---|---|---|")
for units in [50, 200, 1_000] {
    for maxIncrease in [0.0, 0.1, 0.2] {
        var settings = base
        settings.rollouts = rollouts
        settings.unitsPerTick = units
        settings.maxIncrease = maxIncrease
        let outcome = GuardrailSimulation.run(settings)
        print("| \(units) | max_increase \(maxIncrease) | \(percent(outcome.thresholdRate)) | \(percent(outcome.sequentialRate)) |")
    }
}
print("")
print("A real regression: the canary errs with probability \(base.errorRate * 2), the control \(base.errorRate).")
print("")
print("| units a tick | guardrail on error_rate | rollbacks, threshold | rollbacks, sequential |")
print("|---|---|---|---|")
for units in [50, 200, 1_000] {
    var settings = base
    settings.rollouts = rollouts
    settings.unitsPerTick = units
    settings.canaryErrorRate = base.errorRate * 2
    let outcome = GuardrailSimulation.run(settings)
    print("| \(units) | max_increase \(settings.maxIncrease) | \(percent(outcome.thresholdRate)) | \(percent(outcome.sequentialRate)) |")
}
