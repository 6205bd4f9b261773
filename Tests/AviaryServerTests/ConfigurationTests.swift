import Testing

@testable import AviaryServer

/// The read replica's settings (docs/operations.md, "A read replica").
@Suite struct ConfigurationTests {
    static let base = ["AVIARY_DATABASE_URL": "postgres://aviary:pw@127.0.0.1:5432/aviary"]

    @Test func aReplicaAndItsMaxLagAreRead() throws {
        let plain = try AviaryConfiguration.fromEnvironment(Self.base)
        #expect(plain.replicaURL == nil && plain.replicaMaxLag == 5)
        let env = Self.base.merging(
            ["AVIARY_DATABASE_REPLICA_URL": "postgres://aviary:pw@replica:5432/aviary", "AVIARY_REPLICA_MAX_LAG": "0.5"]) { $1 }
        let replicated = try AviaryConfiguration.fromEnvironment(env)
        #expect(replicated.replicaURL == "postgres://aviary:pw@replica:5432/aviary" && replicated.replicaMaxLag == 0.5)
    }

    @Test(arguments: [
        ("AVIARY_DATABASE_REPLICA_URL", "mysql://replica/aviary", "AVIARY_DATABASE_REPLICA_URL must look like"),
        ("AVIARY_REPLICA_MAX_LAG", "0", "AVIARY_REPLICA_MAX_LAG must be a positive number"),
        ("AVIARY_REPLICA_MAX_LAG", "soon", "AVIARY_REPLICA_MAX_LAG must be a positive number"),
    ])
    func badSettingsAreRefusedByName(name: String, value: String, message: String) {
        #expect {
            _ = try AviaryConfiguration.fromEnvironment(Self.base.merging([name: value]) { $1 })
        } throws: { error in
            "\(error)".contains(message)
        }
    }
}
