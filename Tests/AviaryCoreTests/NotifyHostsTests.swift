import AviaryCore
import Foundation
import Testing

struct NotifyHostsTests {
    @Test func hostsMatchAnyPortAndHostPortsTheirsOnly() throws {
        let hosts = try #require(try NotifyHosts(" hooks.internal , alerts.example.com:8443, [::1]:9000, 127.0.0.1"))
        for url in ["http://hooks.internal/x", "https://HOOKS.internal:9999/y", "https://alerts.example.com:8443/z", "http://[::1]:9000/", "http://127.0.0.1:5/"] {
            #expect(hosts.allows(URL(string: url)!), "\(url)")
        }
        for url in ["https://alerts.example.com/z", "http://169.254.169.254/latest", "http://[::1]/", "http://hooks.internal.evil.com/", "http://127.0.0.2/"] {
            #expect(!hosts.allows(URL(string: url)!), "\(url)")
        }
    }

    @Test func anEmptyListAllowsEverythingAndBadEntriesAreRefused() throws {
        #expect(try NotifyHosts(" , ") == nil)
        for bad in ["host:0", "host:http", "a/b", "[::1", ":80", "[::1]:0", "[::1]:x", "[::1]x"] {
            #expect(throws: NotifyHosts.Invalid.self, "\(bad)") { try NotifyHosts(bad) }
        }
    }

    @Test func aNotifyURLOutsideTheListIsRefusedWithItsPath() throws {
        let hosts = try NotifyHosts("hooks.internal")
        var issues = IssueCollector()
        let rollout: JSON = ["variant": "canary", "steps": [10, 100], "step_seconds": 60, "notify_url": "http://169.254.169.254/x"]
        let rules = [Rule(name: "everyone", serve: .split([.init(variant: "stable", weight: 10_000)]))]
        _ = RolloutValidator.parse(
            rollout, JSONPath.root["rollout"], variants: [Variant(key: "stable", value: 1), Variant(key: "canary", value: 2)], control: "stable",
            rules: rules, knownMetrics: [], notifyHosts: hosts, &issues)
        #expect(issues.issues.map(\.path) == ["rollout.notify_url"])
    }
}
