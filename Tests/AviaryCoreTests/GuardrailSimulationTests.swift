import AviaryCore
import Testing

/// The A/A simulation of docs/statistics.md, smaller: a sequential guardrail ticking every
/// step keeps false rollbacks within 5 %, where a threshold guardrail rolls most canaries
/// back; and a real regression is still caught.
@Suite struct GuardrailSimulationTests {
    static func settings(maxIncrease: Double) -> GuardrailSimulation.Settings {
        var settings = GuardrailSimulation.Settings()
        settings.rollouts = 200
        settings.maxIncrease = maxIncrease
        return settings
    }

    @Test(arguments: [0.0, 0.2])
    func aSequentialGuardrailDoesNotCryWolf(maxIncrease: Double) {
        let outcome = GuardrailSimulation.run(Self.settings(maxIncrease: maxIncrease))
        #expect(outcome.sequentialRate <= 0.05, "\(outcome)")
        #expect(outcome.thresholdRate >= 0.5, "\(outcome)")
    }

    @Test func aRealRegressionIsStillRolledBack() {
        var settings = Self.settings(maxIncrease: 0.2)
        settings.canaryErrorRate = 0.10
        let outcome = GuardrailSimulation.run(settings)
        #expect(outcome.sequentialRate >= 0.9, "\(outcome)")
    }
}
