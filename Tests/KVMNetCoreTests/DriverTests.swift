import Testing
import KVMNetTestSupport
@testable import KVMNetCore

/// `up` and `down` against the fake kernel: idempotency, rollback at every step, restoring.
@Suite struct DriverTests {
    static let backends: [FirewallChoice] = [.iptables, .nftables]

    static func request(_ model: NetworkModel, taps: Int = 2, firewall: FirewallChoice = .iptables) -> UpRequest {
        var r = UpRequest(model: model)
        r.taps = taps
        r.firewall = firewall
        if model == .bridged { r.uplink = try! InterfaceName("eth0") }
        return r
    }

    @Test(arguments: NetworkModel.allCases, backends)
    func upTwiceThenDownLeavesTheHostAsFound(_ model: NetworkModel, _ firewall: FirewallChoice) throws {
        let host = FakeHost.sandbox()
        let before = host.snapshot()
        let driver = NetworkDriver(env: host.environment)
        let first = try driver.up(Self.request(model, firewall: firewall))
        #expect(first.action == .created)
        #expect(first.spec.firewall.rawValue == firewall.rawValue)
        let up = host.snapshot()
        #expect(up != before)
        let second = try driver.up(Self.request(model, firewall: firewall))
        #expect(second.action == .unchanged)
        #expect(host.snapshot() == up, "a second up changed the host")
        #expect(try driver.status().allSatisfy { $0.drift.isEmpty })
        let down = try driver.down(.default)
        #expect(down.wasUp)
        #expect(host.snapshot() == before, "down did not restore the host:\n\(host.snapshot())\n---\n\(before)")
        #expect(host.records.isEmpty)
        let again = try driver.down(.default)
        #expect(!again.wasUp)
    }

    /// `down` deletes the taps, and the bridge unless it is a bridged network's, with one group
    /// request. A link someone else put in that group and a tap a live process holds are moved
    /// out of it first and survive.
    @Test(arguments: [NetworkModel.nat, .isolated, .bridged])
    func downDeletesTheGroupButNeverAForeignMember(_ model: NetworkModel) throws {
        let host = FakeHost.sandbox()
        let driver = NetworkDriver(env: host.environment)
        _ = try driver.up(Self.request(model, taps: 3))
        let group = try #require(host.records[.default]?.tapGroup)
        #expect(host.linkTable.filter { $0.group == group }.map(\.name).sorted()
                == (model == .bridged ? [] : ["br-in"]) + ["vif1.0", "vif2.0", "vif3.0"])
        let theirs = host.addLink("theirs0", kind: "veth")
        host.linkTable[host.linkTable.firstIndex { $0.name == theirs.name }!].group = group
        host.heldTaps["vif2.0"] = (4242, "qemu-system-x86")
        let logged = host.changeLog.count
        #expect(throws: KVMNetError.self) { try driver.down(.default) }   // vif2.0 is held
        let log = Array(host.changeLog[logged...])
        #expect(log.filter { $0 == "del group \(group)" }.count == 1, "\(log)")
        #expect(log.contains("del link br-in") == (model == .bridged), "\(log)")
        #expect(host.linkTable.contains { $0.name == "theirs0" && $0.group == 0 })
        #expect(host.linkTable.contains { $0.name == "vif2.0" })
        #expect(!host.linkTable.contains { ["br-in", "vif1.0", "vif3.0"].contains($0.name) })
    }

    /// A new network's tap group is one no link uses and no other network's record holds (its
    /// links may be gone for now): a group delete of one network never meets the other's taps.
    @Test func theTapGroupAvoidsGroupsOtherRecordsHold() throws {
        let probe = FakeHost.sandbox()
        _ = try NetworkDriver(env: probe.environment).up(Self.request(.nat, taps: 1))
        let chosen = try #require(probe.records[.default]?.tapGroup)
        // Another network's record holds that group while none of its links is there.
        let host = FakeHost.sandbox()
        var other = try #require(probe.records[.default])
        other.spec.name = try NetworkName("other")
        other.spec.bridge = try InterfaceName("kb-other")
        other.spec.subnet = CIDRv4("192.168.7.0/24")
        other.spec.hostAddress = CIDRv4("192.168.7.254/24")
        host.records[other.name] = other
        _ = try NetworkDriver(env: host.environment).up(Self.request(.nat, taps: 1))
        let group = try #require(host.records[.default]?.tapGroup)
        #expect(group != chosen)
        #expect(host.linkTable.filter { $0.group == group }.map(\.name).sorted() == ["br-in", "vif1.0"])
    }

    /// lo down (a bare `ip netns add`): the host cannot ask its own DNS server; `up` says so and
    /// neither fails nor touches lo. A network without a host service does not care.
    @Test(arguments: NetworkModel.allCases)
    func loopbackDownIsAWarningNotAChange(_ model: NetworkModel) throws {
        let host = FakeHost.sandbox()
        let lo = host.linkTable.firstIndex { $0.name == "lo" }!
        host.linkTable[lo].isUp = false
        let outcome = try NetworkDriver(env: host.environment).up(Self.request(model))
        let warned = outcome.findings.contains { $0.check == "loopback-down" && $0.severity == .warning && $0.action.contains("ip link set lo up") }
        #expect(warned == model.hasHostAddress, "\(outcome.findings.map(\.check))")
        #expect(host.linkTable.first { $0.name == "lo" }?.isUp == false, "up changed lo")
    }

    @Test(arguments: NetworkModel.allCases)
    func kernelStateAfterUp(_ model: NetworkModel) throws {
        let host = FakeHost.sandbox()
        _ = try NetworkDriver(env: host.environment).up(Self.request(model))
        let br = try #require(host.linkTable.first { $0.name == "br-in" })
        #expect(br.isBridge && br.isUp)
        for tap in ["vif1.0", "vif2.0"] {
            let t = try #require(host.linkTable.first { $0.name == tap })
            #expect(t.masterIndex == br.index && t.isUp && t.mtu == br.mtu)
        }
        let brAddrs = host.addressTable.filter { $0.interface == "br-in" }.map(\.description)
        switch model {
        case .isolated:
            #expect(brAddrs.isEmpty)
            #expect(host.sysctls["net/ipv6/conf/br-in/disable_ipv6"] == "1")
            #expect(host.sysctls["net/ipv4/ip_forward"] == "0")
        case .routed, .nat:
            #expect(brAddrs == ["192.168.1.254/24 dev br-in"])
            #expect(host.sysctls["net/ipv6/conf/br-in/disable_ipv6"] == "1")
            #expect(host.sysctls["net/ipv4/ip_forward"] == "1")
        case .bridged:
            #expect(brAddrs == ["10.241.96.176/24 dev br-in"])
            #expect(host.addressTable.filter { $0.interface == "eth0" }.isEmpty)
            #expect(host.routeTable.contains { $0.isDefault && $0.interface == "br-in" && $0.gateway == "10.241.96.1" })
            #expect(br.mac == host.linkTable.first { $0.name == "eth0" }?.mac)
            #expect(host.linkTable.first { $0.name == "eth0" }?.masterIndex == br.index)
            #expect(host.sysctls["net/ipv4/ip_forward"] == "0")
        }
        let nat = host.iptables["nat"]?["KVMNET-NAT-DEFAULT"]
        #expect((nat != nil) == (model == .nat))
        #expect(host.iptables["filter"]?["FORWARD"]?.first == "-A FORWARD -m comment --comment \"kvmnet:default\" -j KVMNET-FWI-DEFAULT")
    }

    /// Counts the changes a successful `up` makes, then fails each one in turn.
    @Test(arguments: NetworkModel.allCases, backends)
    func aFailureAtEveryStepLeavesTheHostUnchanged(_ model: NetworkModel, _ firewall: FirewallChoice) throws {
        let probe = FakeHost.sandbox()
        _ = try NetworkDriver(env: probe.environment).up(Self.request(model, firewall: firewall))
        let total = probe.changes
        #expect(total > 5)
        for k in 1...total {
            let host = FakeHost.sandbox()
            let before = host.snapshot()
            host.failOnChange = k
            #expect(throws: KVMNetError.self) { try NetworkDriver(env: host.environment).up(Self.request(model, firewall: firewall)) }
            host.failOnChange = nil
            #expect(host.snapshot() == before, "failure at change \(k) of \(total) left:\n\(host.snapshot())")
            #expect(host.records.isEmpty, "failure at change \(k) left a record")
        }
    }

    /// The firewall transaction runs while the taps are made and is waited for before forwarding
    /// is turned on: a transaction the kernel rejects is found then, named, and everything made
    /// meanwhile (the taps too) is undone.
    @Test(arguments: [NetworkModel.nat, .bridged], backends)
    func aRejectedFirewallTransactionIsFoundAndUndone(_ model: NetworkModel, _ firewall: FirewallChoice) throws {
        let host = FakeHost.sandbox()
        let before = host.snapshot()
        host.rejectFirewallTransactions = true
        var message = ""
        do { _ = try NetworkDriver(env: host.environment).up(Self.request(model, taps: 3, firewall: firewall)) } catch { message = "\(error)" }
        #expect(message.contains("(install \(firewall == .iptables ? "iptables" : "nftables") rules for default) failed")
                && message.contains("rejected") && message.contains("every change was undone"), "\(message)")
        #expect(host.changeLog.contains("add tap vif3.0") && host.changeLog.contains("sysctl net/ipv4/ip_forward=1") == false,
                "the taps are made while the transaction runs; forwarding waits for it: \(host.changeLog)")
        host.rejectFirewallTransactions = false
        #expect(host.snapshot() == before, "left:\n\(host.snapshot())")
        #expect(host.records.isEmpty)
    }

    /// SIGKILL in the middle of `up`: the journal written ahead lets `down` remove everything.
    @Test(arguments: NetworkModel.allCases, backends)
    func downAfterAKilledUpCleansUp(_ model: NetworkModel, _ firewall: FirewallChoice) throws {
        let probe = FakeHost.sandbox()
        _ = try NetworkDriver(env: probe.environment).up(Self.request(model, firewall: firewall))
        for k in 1..<probe.changes {
            let host = FakeHost.sandbox()
            let before = host.snapshot()
            host.killAfterChange = k
            _ = try? NetworkDriver(env: host.environment).up(Self.request(model, firewall: firewall))
            host.killAfterChange = nil
            let status = try NetworkDriver(env: host.environment).status()
            #expect(status.first?.drift.isEmpty == false, "a half-done up shows no drift")
            _ = try NetworkDriver(env: host.environment).down(.default)
            #expect(host.snapshot() == before, "down after a kill at change \(k) left:\n\(host.snapshot())")
        }
    }

    /// `up` again after a killed one, failing after its taps are made: the rollback undoes what
    /// that call made, never the bridge the killed run made (even in the taps' link group); `down`
    /// then takes everything.
    @Test(arguments: NetworkModel.allCases)
    func aFailedRepairKeepsWhatTheKilledRunMade(_ model: NetworkModel) throws {
        let host = FakeHost.sandbox()
        let before = host.snapshot()
        host.killAfterChange = host.changes + 1   // the bridge is made, then the process dies
        _ = try? NetworkDriver(env: host.environment).up(Self.request(model, taps: 2))
        host.killAfterChange = nil
        #expect(host.changeLog.last == "add bridge br-in")
        host.rejectFirewallTransactions = true   // found once the taps are made
        #expect(throws: KVMNetError.self) { try NetworkDriver(env: host.environment).up(Self.request(model, taps: 2)) }
        host.rejectFirewallTransactions = false
        #expect(host.changeLog.contains("add tap vif2.0"))
        #expect(host.linkTable.contains { $0.name == "br-in" }, "the rollback took the bridge the killed up made")
        #expect(!host.linkTable.contains { $0.name.hasPrefix("vif") })
        _ = try NetworkDriver(env: host.environment).down(.default)
        #expect(host.snapshot() == before, "left:\n\(host.snapshot())")
    }

    @Test func ipForwardIsRestoredOnlyByTheLastNetworkThatNeedsIt() throws {
        let host = FakeHost.sandbox()
        let driver = NetworkDriver(env: host.environment)
        var a = UpRequest(model: .nat)
        a.name = try NetworkName("a")
        var b = UpRequest(model: .routed)
        b.name = try NetworkName("b")
        b.subnet = CIDRv4("192.168.7.0/24")
        _ = try driver.up(a)
        _ = try driver.up(b)
        #expect(host.sysctls["net/ipv4/ip_forward"] == "1")
        _ = try driver.down(a.name)
        #expect(host.sysctls["net/ipv4/ip_forward"] == "1", "b still routes")
        _ = try driver.down(b.name)
        #expect(host.sysctls["net/ipv4/ip_forward"] == "0")
    }

    @Test func ipForwardAlreadyOnIsLeftOn() throws {
        let host = FakeHost.sandbox()
        host.sysctls["net/ipv4/ip_forward"] = "1"
        let driver = NetworkDriver(env: host.environment)
        _ = try driver.up(UpRequest(model: .nat))
        _ = try driver.down(.default)
        #expect(host.sysctls["net/ipv4/ip_forward"] == "1")
    }

    @Test func ipForwardChangedMeanwhileIsLeftAlone() throws {
        let host = FakeHost.sandbox()
        let driver = NetworkDriver(env: host.environment)
        _ = try driver.up(UpRequest(model: .routed))
        host.sysctls["net/ipv4/ip_forward"] = "0"
        let drift = try driver.status().first?.drift ?? []
        #expect(drift.contains { $0.contains("net.ipv4.ip_forward is 0") })
        host.sysctls["net/ipv4/ip_forward"] = "2"
        _ = try driver.down(.default)
        #expect(host.sysctls["net/ipv4/ip_forward"] == "2")
        #expect(host.log.contains { $0.contains("someone changed it") })
    }

    @Test func upAgainRepairsDrift() throws {
        let host = FakeHost.sandbox()
        let driver = NetworkDriver(env: host.environment)
        _ = try driver.up(Self.request(.nat))
        let good = host.snapshot()
        host.iptables["filter"]!["KVMNET-FWI-DEFAULT"]!.removeLast()
        host.iptables["filter"]!["FORWARD"]!.removeAll()
        let tap = host.linkTable.firstIndex { $0.name == "vif2.0" }!
        host.linkTable[tap].masterIndex = 0
        host.sysctls["net/ipv4/ip_forward"] = "0"
        let drift = try driver.status().first!.drift
        #expect(drift.count == 5, "\(drift)")
        let repaired = try driver.up(Self.request(.nat))
        #expect(repaired.action == .repaired)
        #expect(repaired.performed.count == 3, "\(repaired.performed.map(\.summary))")
        #expect(host.snapshot() == good)
        #expect(try driver.up(Self.request(.nat)).action == .unchanged)
        #expect(try driver.status().first!.drift.isEmpty)
    }

    @Test func upAgainWithOtherOptionsIsRefused() throws {
        let host = FakeHost.sandbox()
        let driver = NetworkDriver(env: host.environment)
        _ = try driver.up(UpRequest(model: .nat))
        do { _ = try driver.up(UpRequest(model: .routed)); Issue.record("accepted") } catch let e as KVMNetError {
            #expect(e.exitCode == 1)
            #expect(e.description.contains("already up as nat"))
            #expect(e.description.contains("kvmnet down"))
        }
    }

    @Test func aForeignBridgeIsNeverAdopted() throws {
        let host = FakeHost.sandbox()
        host.addLink("br-in", kind: "bridge")
        let before = host.snapshot()
        do { _ = try NetworkDriver(env: host.environment).up(UpRequest(model: .isolated)); Issue.record("adopted") } catch let e as KVMNetError {
            #expect(e.exitCode == 1)
            #expect(e.description.contains("br-in already exists and was not created by kvmnet"))
        }
        _ = try NetworkDriver(env: host.environment).down(.default)
        #expect(host.snapshot() == before)
    }

    @Test func overlappingSubnetIsRefusedNamingTheInterface() throws {
        let host = FakeHost.sandbox()
        var r = UpRequest(model: .nat)
        r.subnet = CIDRv4("10.241.96.0/25")
        do { _ = try NetworkDriver(env: host.environment).up(r); Issue.record("accepted") } catch let e as KVMNetError {
            #expect(e.description.contains("eth0"))
            #expect(e.description.contains("10.241.96.0/25"))
        }
    }

    @Test func bridgedUplinkChecks() throws {
        var r = UpRequest(model: .bridged)
        r.uplink = try InterfaceName("eth0")
        let wifi = FakeHost.sandbox()
        wifi.wireless = ["eth0"]
        #expect { try NetworkDriver(env: wifi.environment).up(r) } throws: { ($0 as? KVMNetError)?.description.contains("wireless") == true }

        let dhcp = FakeHost.sandbox()
        dhcp.addressTable[0].flags = 0
        #expect { try NetworkDriver(env: dhcp.environment).up(r) } throws: { ($0 as? KVMNetError)?.description.contains("DHCP") == true }
        r.force = true
        _ = try NetworkDriver(env: dhcp.environment).up(r)

        let missing = FakeHost.sandbox()
        r.uplink = try InterfaceName("eth9")
        #expect { try NetworkDriver(env: missing.environment).up(r) } throws: { ($0 as? KVMNetError)?.description == "uplink eth9 does not exist" }

        let bridge = FakeHost.sandbox()
        bridge.addLink("br0", kind: "bridge")
        r.uplink = try InterfaceName("br0")
        #expect { try NetworkDriver(env: bridge.environment).up(r) } throws: { ($0 as? KVMNetError)?.description.contains("is a bridge") == true }
    }

    @Test func bridgedDefaultsToTheDefaultRouteInterface() throws {
        let host = FakeHost.sandbox()
        let out = try NetworkDriver(env: host.environment).up(UpRequest(model: .bridged))
        #expect(out.spec.uplink?.rawValue == "eth0")
        #expect(out.spec.mtu == 1500)
    }

    @Test func missingFirewallToolsNameThePackage() throws {
        let host = FakeHost.sandbox()
        host.iptablesInstalled = false
        let before = host.snapshot()
        #expect { try NetworkDriver(env: host.environment).up(Self.request(.nat, firewall: .iptables)) } throws: {
            ($0 as? KVMNetError)?.description.contains("apt-get install iptables") == true
        }
        #expect(try NetworkDriver(env: host.environment).up(Self.request(.nat, firewall: .auto)).spec.firewall == .nftables)
        _ = try NetworkDriver(env: host.environment).down(.default)
        host.nftInstalled = false
        #expect { try NetworkDriver(env: host.environment).up(Self.request(.nat, firewall: .auto)) } throws: {
            ($0 as? KVMNetError)?.description.contains("install the Debian package nftables or iptables") == true
        }
        #expect(host.snapshot() == before)
    }

    /// A firewalld-like table whose forward chain drops by default: `up` fails naming it and
    /// changes nothing (an accept in kvmnet's rules could not override it).
    @Test(arguments: NetworkModel.allCases, backends)
    func aForeignDropTableStopsUpNamingIt(_ model: NetworkModel, _ firewall: FirewallChoice) throws {
        let host = FakeHost.sandbox()
        host.sysctls["net/bridge/bridge-nf-call-iptables"] = "1"
        host.foreignNft(table: "inet firewalld", chain: "filter_FORWARD", header: "type filter hook forward priority filter + 10; policy drop;")
        let before = host.snapshot()
        #expect { try NetworkDriver(env: host.environment).up(Self.request(model, firewall: firewall)) } throws: {
            let m = ($0 as? KVMNetError)?.description ?? ""
            return m.contains("would not pass traffic") && m.contains("nft table inet firewalld chain filter_FORWARD")
        }
        #expect(host.snapshot() == before)
    }

    /// One network's outbound accept must never let its guests into another network's guests
    /// that refuse new connections: every inbound chain comes before any outbound chain.
    @Test func inboundRulesOfEveryNetworkPrecedeOutboundAccepts() throws {
        let host = FakeHost.sandbox()
        host.foreign(table: "filter", chain: "FORWARD", rules: ["-j FOREIGN-A"])
        let driver = NetworkDriver(env: host.environment)
        var a = Self.request(.nat, taps: 0, firewall: .iptables)
        a.name = try NetworkName("a")
        a.subnet = CIDRv4("10.1.0.0/24")
        var b = Self.request(.routed, taps: 0, firewall: .iptables)
        b.name = try NetworkName("b")
        b.subnet = CIDRv4("10.2.0.0/24")
        var c = Self.request(.isolated, taps: 0, firewall: .iptables)
        c.name = try NetworkName("c")
        for r in [a, b, c] { _ = try driver.up(r) }
        let forward = host.iptables["filter"]!["FORWARD"]!
        let lastInbound = try #require(forward.lastIndex { $0.contains("-j KVMNET-FWI-") })
        let firstOutbound = try #require(forward.firstIndex { $0.contains("-j KVMNET-FWO-") })
        #expect(lastInbound < firstOutbound, "\(forward)")
        #expect(forward.filter { $0.contains("KVMNET-FWI-") }.count == 3 && forward.filter { $0.contains("KVMNET-FWO-") }.count == 3)
        #expect(forward.last == "-A FORWARD -j FOREIGN-A")
        _ = try driver.down(b.name)
        _ = try driver.up(b)
        let again = host.iptables["filter"]!["FORWARD"]!
        #expect(again.lastIndex { $0.contains("-j KVMNET-FWI-") }! < again.firstIndex { $0.contains("-j KVMNET-FWO-") }!)
    }

    @Test func nftablesOnADockerHostIsRefused() throws {
        let host = FakeHost.sandbox()
        host.foreign(table: "filter", chain: "FORWARD", policy: "DROP")
        #expect { try NetworkDriver(env: host.environment).up(Self.request(.nat, firewall: .nftables)) } throws: {
            ($0 as? KVMNetError)?.description.contains("use --firewall iptables") == true
        }
        #expect(try NetworkDriver(env: host.environment).up(Self.request(.nat, firewall: .auto)).spec.firewall == .iptables)
    }

    @Test(arguments: backends)
    func forwardsAddRemoveAndGoWithDown(_ firewall: FirewallChoice) throws {
        let host = FakeHost.sandbox()
        let before = host.snapshot()
        let driver = NetworkDriver(env: host.environment)
        var r = Self.request(.nat, firewall: firewall)
        r.forwards = [try PortForward.Request.parse("tcp:8080:192.168.1.1:80")]
        _ = try driver.up(r)
        let f = try driver.addForward(try PortForward.Request.parse("udp:5353:192.168.1.2:53"), network: .default)
        #expect(f.address.description == "192.168.1.2")
        #expect(try host.load(.default)?.forwards?.count == 2)
        #expect(try driver.status().first?.drift == [])
        let text = host.iptablesSave() + host.nftListing(host.nftOrder)
        #expect(text.contains("5353"))
        #expect(try driver.removeForward(try PortForward.Request.parse("udp:5353:x:53"), network: .default) != nil)
        #expect(!(host.iptablesSave() + host.nftListing(host.nftOrder)).contains("5353"))
        #expect { try driver.addForward(try PortForward.Request.parse("tcp:8080:192.168.1.3:80"), network: .default) } throws: {
            ($0 as? KVMNetError)?.description.contains("already forwarded") == true
        }
        #expect { try driver.addForward(try PortForward.Request.parse("tcp:9090:guest07:80"), network: .default) } throws: {
            ($0 as? KVMNetError)?.description.contains("no guest guest07") == true
        }
        _ = try driver.down(.default)
        #expect(host.snapshot() == before)
    }

    @Test func nftDriftIsFoundAndRepaired() throws {
        let host = FakeHost.sandbox()
        let driver = NetworkDriver(env: host.environment)
        _ = try driver.up(Self.request(.nat, firewall: .nftables))
        let good = host.snapshot()
        let i = host.nftTables["inet kvmnet"]!.chains.firstIndex { $0.name == "fwd-default" }!
        host.nftTables["inet kvmnet"]!.chains[i].rules.removeLast()
        #expect(try driver.status().first?.drift.contains { $0.contains("nft chain fwd-default differs") } == true)
        #expect(try driver.up(Self.request(.nat, firewall: .nftables)).action == .repaired)
        #expect(host.snapshot() == good)
    }

    @Test func dockerUserGetsOneRecordedJumpAndKeepsItsPolicy() throws {
        let host = FakeHost.sandbox()
        host.foreign(table: "filter", chain: "FORWARD", policy: "DROP", rules: ["-j DOCKER-USER"])
        host.foreign(table: "filter", chain: "DOCKER-USER", rules: ["-j RETURN"])
        host.foreign(table: "nat", chain: "POSTROUTING", rules: ["-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"])
        let before = host.snapshot()
        let driver = NetworkDriver(env: host.environment)
        _ = try driver.up(UpRequest(model: .nat))
        #expect(host.iptables["filter"]!["DOCKER-USER"]!.first == "-A DOCKER-USER -m comment --comment \"kvmnet:default\" -j KVMNET-FWI-DEFAULT")
        _ = try driver.up(UpRequest(model: .nat))
        #expect(host.iptables["filter"]!["DOCKER-USER"]!.count == 3, "the inbound and outbound jumps, and Docker's RETURN")
        _ = try driver.down(.default)
        #expect(host.snapshot() == before)
        #expect(host.policies["filter"]!["FORWARD"] == "DROP")
    }

    @Test func recordNamesItsNamespaceAndOthersAreRefused() throws {
        let host = FakeHost.sandbox()
        _ = try NetworkDriver(env: host.environment).up(UpRequest(model: .isolated))
        var other = host.environment
        other.namespace = NamespaceIdentity(name: "elsewhere", inode: 42, isRoot: false)
        #expect { try NetworkDriver(env: other).down(.default) } throws: {
            ($0 as? KVMNetError)?.description.contains("namespace test") == true
        }
    }

    @Test func signalDuringUpRollsBack() throws {
        let host = FakeHost.sandbox()
        let before = host.snapshot()
        var env = host.environment
        nonisolated(unsafe) var calls = 0
        env.pendingSignal = { calls += 1; return calls > 4 ? 15 : nil }
        do { _ = try NetworkDriver(env: env).up(Self.request(.nat)); Issue.record("not interrupted") } catch let e as KVMNetError {
            #expect(e.exitCode == 143)
        }
        #expect(host.snapshot() == before)
    }
}
