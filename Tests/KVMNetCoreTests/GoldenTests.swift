import Testing
import KVMNetTestSupport
@testable import KVMNetCore

/// The exact plan and firewall rules each model yields on the sandbox host, as golden files
/// (regenerate with KVMNET_REGENERATE=1 and review the diff).
@Suite struct GoldenTests {
    static func plan(_ model: NetworkModel) throws -> [HostStep] {
        let host = FakeHost.sandbox()
        var r = UpRequest(model: model)
        r.taps = 2
        return try NetworkDriver(env: host.environment).plan(r).1
    }

    @Test(arguments: NetworkModel.allCases)
    func planPerModel(_ model: NetworkModel) throws {
        let text = try Self.plan(model).enumerated().map { "# \($0.offset + 1). \($0.element.summary)\n\($0.element.command)\n" }.joined()
        if let diff = Golden.check(text, "plans/\(model).txt") { Issue.record(Comment(rawValue: diff)) }
    }

    @Test(arguments: NetworkModel.allCases)
    func iptablesRulesPerModel(_ model: NetworkModel) throws {
        let host = FakeHost.sandbox()
        var r = UpRequest(model: model)
        r.taps = 1
        let spec = try NetworkDriver(env: host.environment).plan(r).0
        let text = IptablesRuleset(spec: spec).installScript(present: IptablesState())
        if let diff = Golden.check(text, "iptables/\(model).rules") { Issue.record(Comment(rawValue: diff)) }
    }

    @Test func removalDeletesExactlyWhatIsPresent() throws {
        let rec = FirewallRecord(backend: .iptables, chains: ["filter:KVMNET-FWD-DEFAULT", "nat:KVMNET-NAT-DEFAULT"],
                                 jumps: [FirewallJump(table: "filter", from: "FORWARD", rule: "-m comment --comment \"kvmnet:default\" -j KVMNET-FWD-DEFAULT")])
        let present = IptablesState(save: """
        *filter
        :FORWARD ACCEPT [0:0]
        :KVMNET-FWD-DEFAULT - [0:0]
        -A FORWARD -m comment --comment kvmnet:default -j KVMNET-FWD-DEFAULT
        -A FORWARD -j FOREIGN
        COMMIT
        """)
        #expect(iptablesRemovalScript(rec, present: present) == """
        *filter
        -D FORWARD -m comment --comment "kvmnet:default" -j KVMNET-FWD-DEFAULT
        :KVMNET-FWD-DEFAULT - [0:0]
        -X KVMNET-FWD-DEFAULT
        COMMIT

        """)
        #expect(iptablesRemovalScript(rec, present: IptablesState()) == "")
    }

    @Test func everyRuleCarriesTheNetworkComment() throws {
        for model in NetworkModel.allCases {
            let host = FakeHost.sandbox()
            let spec = try NetworkDriver(env: host.environment).plan(UpRequest(model: model)).0
            let rules = IptablesRuleset(spec: spec)
            for ch in rules.chains { for r in ch.rules { #expect(r.contains("--comment \"kvmnet:default\"")) } }
        }
    }
}
