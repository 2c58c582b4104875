import Testing
import KVMNetTestSupport
@testable import KVMNetCore

/// The exact plan and firewall rules each model yields on the sandbox host, as golden files
/// (regenerate with KVMNET_REGENERATE=1 and review the diff).
@Suite struct GoldenTests {
    static let backends: [FirewallChoice] = [.iptables, .nftables]

    static func plan(_ model: NetworkModel, _ firewall: FirewallChoice) throws -> [HostStep] {
        let host = FakeHost.sandbox()
        var r = UpRequest(model: model)
        r.taps = 2
        r.firewall = firewall
        return try NetworkDriver(env: host.environment).plan(r).steps
    }

    @Test(arguments: NetworkModel.allCases, backends)
    func planPerModel(_ model: NetworkModel, _ firewall: FirewallChoice) throws {
        let text = try Self.plan(model, firewall).enumerated().map { "# \($0.offset + 1). \($0.element.summary)\n\($0.element.command)\n" }.joined()
        if let diff = Golden.check(text, "plans/\(model)-\(firewall).txt") { Issue.record(Comment(rawValue: diff)) }
    }

    /// The rules of each model on both backends, from the same inputs (nat with one forward).
    @Test(arguments: NetworkModel.allCases)
    func firewallRulesPerModel(_ model: NetworkModel) throws {
        let host = FakeHost.sandbox()
        var r = UpRequest(model: model)
        r.taps = 1
        let spec = try NetworkDriver(env: host.environment).plan(r).spec
        let forwards = model == .nat ? [PortForward(proto: .tcp, hostPort: 8080, guest: "guest01", address: IPv4Address("192.168.1.1")!, port: 80)] : []
        let ipt = IptablesRuleset(spec: spec, forwards: forwards).installScript(present: IptablesState())
        if let diff = Golden.check(ipt, "iptables/\(model).rules") { Issue.record(Comment(rawValue: diff)) }
        let nft = NftRuleset(spec: spec, forwards: forwards).installScript
        if let diff = Golden.check(nft, "nft/\(model).nft") { Issue.record(Comment(rawValue: diff)) }
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
            let spec = try NetworkDriver(env: host.environment).plan(UpRequest(model: model)).spec
            for ch in IptablesRuleset(spec: spec).chains { for r in ch.rules { #expect(r.contains("--comment \"kvmnet:default\"")) } }
            for ch in NftRuleset(spec: spec).chains { for r in ch.rules { #expect(r.hasSuffix("comment \"kvmnet:default\"")) } }
        }
    }

    @Test func foreignDropChainsAreFound() {
        let ruleset = """
        table inet firewalld {
        \tchain filter_FORWARD {
        \t\ttype filter hook forward priority filter + 10; policy drop;
        \t}
        \tchain filter_INPUT {
        \t\ttype filter hook input priority filter + 10; policy accept;
        \t}
        }
        table ip filter {
        \tchain FORWARD {
        \t\ttype filter hook forward priority filter; policy drop;
        \t}
        }
        table inet kvmnet {
        \tchain fwd-default {
        \t\ttype filter hook forward priority filter; policy drop;
        \t}
        }
        """
        let drops = FirewallFacts.foreignDrops(in: ruleset)
        #expect(drops.count == 1)
        #expect(drops.first?.table == "inet firewalld" && drops.first?.chain == "filter_FORWARD" && drops.first?.hook == "forward")
    }

    @Test func portClashesAreFindings() throws {
        func findings(_ l: [FirewallFacts.Listener], dns: Bool = true) throws -> [String] {
            let f = FirewallFacts(iptables: true, nft: true, forwardPolicyDrop: false, dockerUser: false, bridgeNetfilter: true,
                                  foreignDrops: [], legacyRules: 0, dnsDhcpListeners: l)
            var r = UpRequest(model: .nat)
            r.dns = dns
            let spec = try SpecResolver.resolve(r, links: [], routes: [], namespace: NamespaceIdentity(name: "t", inode: 1, isRoot: false), backend: .nftables)
            return Doctor.findings(for: spec, f).filter { $0.severity == .error }.map { "\($0.check): \($0.message)" }
        }
        // A resolver on one address, and another network's dnsmasq on *:67 (dnsmasq shares it): fine.
        #expect(try findings([.init(address: "127.0.0.53", port: 53, process: "systemd-resolve (pid 9)"),
                              .init(address: "0.0.0.0", port: 67, process: "dnsmasq (pid 7)")]).isEmpty)
        // A DNS server on every address: named, with its pid; --dns off avoids it.
        let named = FirewallFacts.Listener(address: "::", port: 53, process: "named (pid 5452)")
        #expect(try findings([named]) == ["dns-port: named (pid 5452) listens on port 53 on every address: the DNS server of default could not bind br-in's address"])
        #expect(try findings([named], dns: false).isEmpty)
        // Another DHCP server on every address.
        #expect(try findings([.init(address: "0.0.0.0", port: 67, process: "dhcpd (pid 3)")]).first?.hasPrefix("dhcp-port: dhcpd (pid 3)") == true)
    }

    @Test func autoChoosesIptablesOnlyWhereNftCannotWin() throws {
        var f = FirewallFacts(iptables: true, nft: true, forwardPolicyDrop: false, dockerUser: false, bridgeNetfilter: true,
                              foreignDrops: [], legacyRules: 0, dnsDhcpListeners: [])
        #expect(try Doctor.chooseBackend(.auto, f).0 == .nftables)
        f.forwardPolicyDrop = true
        #expect(try Doctor.chooseBackend(.auto, f).0 == .iptables)
        #expect(try Doctor.chooseBackend(.auto, f).1.contains("FORWARD chain drops by default"))
        f.nft = false
        f.forwardPolicyDrop = false
        #expect(try Doctor.chooseBackend(.auto, f).0 == .iptables)
        #expect(throws: KVMNetError.self) { try Doctor.chooseBackend(.nftables, f) }
    }
}
