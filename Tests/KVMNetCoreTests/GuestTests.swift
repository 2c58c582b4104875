import Foundation
import Testing
import KVMNetTestSupport
@testable import KVMNetCore

@Suite struct GuestTests {
    static let ns = NamespaceIdentity(name: "host", inode: 1, isRoot: false)

    func spec(_ model: NetworkModel, on host: FakeHost = FakeHost.sandbox()) throws -> NetworkSpec {
        var r = UpRequest(model: model)
        if model == .bridged { r.uplink = try InterfaceName("eth0") }
        return try NetworkDriver(env: host.environment).plan(r).spec
    }

    @Test func seedAddressesPerModel() throws {
        let iso = try GuestPlanner.guests(GuestRequest(count: 2), spec: spec(.isolated), namespace: Self.ns, lanGateway: nil, lan: nil)
        #expect(iso.map { $0.address!.description } == ["10.0.1.1/24", "10.0.1.2/24"])
        #expect(iso.allSatisfy { $0.gateway == nil })
        #expect(iso.map(\.name) == ["guest01", "guest02"])
        #expect(iso.map(\.tap) == ["vif1.0", "vif2.0"])
        let nat = try GuestPlanner.guests(GuestRequest(count: 2), spec: spec(.nat), namespace: Self.ns, lanGateway: nil, lan: nil)
        #expect(nat.map { $0.address!.description } == ["192.168.1.1/24", "192.168.1.2/24"])
        #expect(nat.allSatisfy { $0.gateway?.description == "192.168.1.254" })
        var b = GuestRequest(count: 2)
        b.addresses = try GuestRequest.parseAddresses("10.241.96.90-10.241.96.99")
        let br = try GuestPlanner.guests(b, spec: spec(.bridged), namespace: Self.ns,
                                         lanGateway: IPv4Address("10.241.96.1"), lan: CIDRv4("10.241.96.176/24"))
        #expect(br.map { $0.address!.description } == ["10.241.96.90/24", "10.241.96.91/24"])
        #expect(br.allSatisfy { $0.gateway?.description == "10.241.96.1" })
    }

    @Test func bridgedGuestAddressesMustBeFreeOnTheLAN() throws {
        let lan = CIDRv4("10.241.96.176/24")
        for (ip, message) in [("10.241.96.176", "is an address of this host"), ("10.241.97.5", "not a host address on the uplink's LAN"),
                              ("10.241.96.1", "the LAN's gateway"), ("10.241.96.255", "not a host address")] {
            var r = GuestRequest(count: 1)
            r.addresses = [IPv4Address(ip)!]
            #expect { try GuestPlanner.guests(r, spec: spec(.bridged), namespace: Self.ns, lanGateway: IPv4Address("10.241.96.1"),
                                               lan: lan, hostAddresses: [IPv4Address("10.241.96.176")!]) } throws: {
                ($0 as? KVMNetError)?.description.contains(message) == true
            }
        }
    }

    @Test func guestOptionsAreCheckedBeforeTheNetworkChanges() throws {
        let host = FakeHost.sandbox()
        let before = host.snapshot()
        var r = UpRequest(model: .nat)
        r.subnet = CIDRv4("10.9.0.0/30")
        #expect(throws: KVMNetError.self) { try NetworkDriver(env: host.environment).up(r, guests: GuestRequest(count: 3)) }
        #expect(throws: KVMNetError.self) { try NetworkDriver(env: host.environment).up(UpRequest(model: .bridged), guests: GuestRequest(count: 1)) }
        host.addLink("vif1.0", kind: "tun")
        let withTap = host.snapshot()
        #expect { try NetworkDriver(env: host.environment).up(UpRequest(model: .nat), guests: GuestRequest(count: 1)) } throws: {
            ($0 as? KVMNetError)?.description.contains("an interface named vif1.0 already exists") == true
        }
        #expect(host.snapshot() == withTap)
        try host.deleteLink(name: "vif1.0")
        #expect(host.snapshot() == before, "a refused up changed the host")
    }

    @Test func tapsOfAnotherNetworkAreRefused() throws {
        let host = FakeHost.sandbox()
        let driver = NetworkDriver(env: host.environment)
        var lab = UpRequest(model: .isolated)
        lab.name = try NetworkName("lab")
        _ = try driver.up(lab)
        // A qemu of the user's named its tap vif1.0 and attached it to lab through the hook.
        host.addLink("vif1.0", kind: "tun")
        try driver.hookUp(tap: "vif1.0", network: lab.name)
        var mine = UpRequest(model: .nat)
        mine.subnet = CIDRv4("10.8.0.0/24")
        #expect { try driver.up(mine, guests: GuestRequest(count: 1)) } throws: {
            ($0 as? KVMNetError)?.description == "tap vif1.0 belongs to kvmnet network lab; give this network another --name"
        }
        // Shortened names can never equal a name that was not shortened.
        #expect(try NetworkName("abcdefghijkl").tapName(1) != NetworkName("abcde").tapName(1))
        #expect(try NetworkName("abcdefghijkl").tapName(1).rawValue.contains("_"))
    }

    @Test func bridgedGuestsNeedAddresses() throws {
        #expect(throws: KVMNetError.self) {
            try GuestPlanner.guests(GuestRequest(count: 2), spec: spec(.bridged), namespace: Self.ns, lanGateway: nil, lan: CIDRv4("10.241.96.176/24"))
        }
        #expect(throws: KVMNetError.self) { try GuestRequest.parseAddresses("10.0.0.9-10.0.0.1") }
        #expect(throws: KVMNetError.self) { try GuestRequest.parseAddresses("10.0.0.1,banana") }
        #expect(try GuestRequest.parseAddresses("10.0.0.1,10.0.0.5").count == 2)
    }

    @Test func macsAreDistinctStableAndNeverQemusDefault() throws {
        let a = (1...64).map { GuestPlanner.mac(network: .default, namespace: Self.ns, index: $0) }
        #expect(Set(a).count == 64)
        #expect(a.allSatisfy { $0.isLocallyAdministered && !$0.isMulticast && $0.description != "52:54:00:12:34:56" })
        #expect(a == (1...64).map { GuestPlanner.mac(network: .default, namespace: Self.ns, index: $0) })
    }

    @Test func qemuArgvAndHooksAreGolden() throws {
        let g = try GuestPlanner.guests(GuestRequest(count: 1), spec: spec(.nat), namespace: Self.ns, lanGateway: nil, lan: nil)[0]
        let paths = GuestPaths(folder: "/run/kvmnet/default")
        let argv = QemuCommand.argv(qemu: "qemu-system-x86_64", guest: g, boot: .kernel(kernel: "/g/vmlinuz", initrd: "/g/initrd.img"),
                                    memoryMiB: 128, cpus: 1, kvm: false, paths: paths)
        let hooks = QemuCommand.hookScript(action: "ifup", kvmnet: "/usr/local/bin/kvmnet", stateDir: "/run/kvmnet", network: .default)
            + QemuCommand.hookScript(action: "ifdown", kvmnet: "/opt/it's here/kvmnet", stateDir: "/run/kvmnet", network: .default)
        let text = argv.joined(separator: "\n") + "\n----\n" + hooks
        if let diff = Golden.check(text, "qemu/guest01-nat.txt") { Issue.record(Comment(rawValue: diff)) }
        #expect(argv.contains("tap,id=net0,ifname=vif1.0,script=/run/kvmnet/default/qemu-ifup,downscript=/run/kvmnet/default/qemu-ifdown"))
    }

    @Test func upWithGuestsThenDownStopsThem() throws {
        let host = FakeHost.sandbox()
        let guests = FakeGuests()
        let env = host.environment(guests: guests)
        let before = host.snapshot()
        let driver = NetworkDriver(env: env)
        _ = try driver.up(UpRequest(model: .nat))
        #expect(guests.files["/run/kvmnet/netns-test/default/qemu-ifup"]?.contains("hook ifup \"$1\" --name default") == true)
        let launched = try driver.launchGuests(GuestRequest(count: 2), network: .default) { _ in }
        #expect(launched.count == 2 && launched.allSatisfy { $0.pid != nil })
        #expect(guests.processes.count == 3, "two guests and the network's dnsmasq")
        #expect(guests.daemons.count == 1)
        let again = try driver.launchGuests(GuestRequest(count: 2), network: .default) { _ in }
        #expect(again == launched, "a second up restarted running guests")
        guests.ignorePowerdown = ["guest02"]
        let down = try driver.down(.default, guestTimeout: 1)
        #expect(down.guests == ["guest01", "guest02"])
        #expect(guests.processes.isEmpty, "a qemu process survived down")
        #expect(host.snapshot() == before)
    }

    /// dnsmasq's self-check asks the bridge's address for the first guest's name: with lo down it
    /// is skipped (no answer could come back); otherwise an unanswered check gives up after 3 s
    /// (1 s a try) and says so, where it once tried 20 times 5 s.
    @Test func theDnsmasqCheckIsSkippedWithLoDownAndBoundedOtherwise() throws {
        for loUp in [false, true] {
            let host = FakeHost.sandbox()
            host.busyboxInstalled = true
            if !loUp { host.linkTable[host.linkTable.firstIndex { $0.name == "lo" }!].isUp = false }
            let guests = FakeGuests()
            let driver = NetworkDriver(env: host.environment(guests: guests))
            var failure = ""
            do { _ = try driver.up(UpRequest(model: .nat), guests: GuestRequest(count: 1)) } catch { failure = "\(error)" }
            let lookups = host.commandLog.filter { $0.contains("busybox nslookup guest01.default.kvmnet 192.168.1.254") }
            if loUp {
                #expect(failure.contains("does not serve its static entries"), "\(failure)")
                #expect(!lookups.isEmpty && lookups.allSatisfy { $0.hasPrefix("timeout 1 ") })
                #expect(guests.clock < 4, "the check took \(guests.clock) s")
            } else {
                #expect(failure.isEmpty, "\(failure)")
                #expect(lookups.isEmpty, "\(lookups)")
            }
        }
    }

    /// A host without an IPv4 default route has no uplink address and no outside to try: verify
    /// says which rows of the table it could not check instead of leaving them out silently.
    @Test func verifyNamesTheRowsItCannotCheck() throws {
        for withRoute in [true, false] {
            let host = FakeHost.sandbox()
            if !withRoute { host.routeTable.removeAll { $0.isDefault } }
            let guests = FakeGuests()
            let driver = NetworkDriver(env: host.environment(guests: guests))
            _ = try driver.up(UpRequest(model: .nat))
            _ = try driver.launchGuests(GuestRequest(count: 2), network: .default) { _ in }
            let (checks, notes) = try driver.verify(.default)
            #expect(checks.contains { $0.check.hasSuffix("host's uplink address") } == withRoute)
            #expect(checks.contains { $0.check.contains("→ outside") } == withRoute)
            #expect(notes.contains { $0.contains("guest → host's uplink address are not checked") } == !withRoute, "\(notes)")
            #expect(notes.contains { $0.contains("guest → outside are not checked") } == !withRoute, "\(notes)")
            _ = try driver.down(.default, guestTimeout: 0)
        }
    }

    /// A boot file that is not there is named before anything changes (not after the network is
    /// built and qemu failed).
    @Test(arguments: [("--kernel", GuestBoot.kernel(kernel: "/missing/vmlinuz", initrd: "/g/initrd.img"), "/missing/vmlinuz"),
                      ("--initrd", GuestBoot.kernel(kernel: "/g/vmlinuz", initrd: "/missing/initrd.img"), "/missing/initrd.img"),
                      ("--image", GuestBoot.image("/missing/base.qcow2"), "/missing/base.qcow2")])
    func aMissingBootFileIsNamedBeforeAnyChange(_ option: String, _ boot: GuestBoot, _ path: String) throws {
        let host = FakeHost.sandbox()
        let before = host.snapshot()
        let guests = FakeGuests()
        guests.unreadable = [path]
        var req = GuestRequest(count: 1)
        req.boot = boot
        #expect { try NetworkDriver(env: host.environment(guests: guests)).up(UpRequest(model: .nat), guests: req) } throws: {
            "\($0)".contains("\(option) \(path): no such file")
        }
        #expect(host.snapshot() == before && host.records.isEmpty)
    }

    @Test func downKeepsDiskImagesWhenAsked() throws {
        let host = FakeHost.sandbox()
        let guests = FakeGuests()
        let driver = NetworkDriver(env: host.environment(guests: guests))
        _ = try driver.up(UpRequest(model: .isolated))
        var req = GuestRequest(count: 1)
        req.boot = .image("/images/base.qcow2")
        req.bootWait = 0
        _ = try driver.launchGuests(req, network: .default) { _ in }
        #expect(guests.files["/run/kvmnet/netns-test/default/guest01.qcow2"] != nil)
        #expect(guests.files["/run/kvmnet/netns-test/default/guest01-seed.img"]?.contains("== kvmnet.env") == true)
        let down = try driver.down(.default, guestTimeout: 0, keepDisks: true)
        #expect(down.keptDisks.count == 2)
        #expect(down.keptDisks.allSatisfy { $0.hasPrefix("/run/kvmnet/netns-test/kept-disks/default-") && guests.files[$0] != nil })
        #expect(guests.files["/run/kvmnet/netns-test/default/guest01.qcow2"] == nil)
    }

    @Test func aGuestThatNeverBootsFailsNamingIt() throws {
        let host = FakeHost.sandbox()
        let guests = FakeGuests()
        guests.neverReady = ["guest02"]
        let driver = NetworkDriver(env: host.environment(guests: guests))
        _ = try driver.up(UpRequest(model: .isolated))
        do {
            _ = try driver.launchGuests(GuestRequest(count: 2), network: .default, bootTimeout: 5) { _ in }
            Issue.record("no failure")
        } catch let e as KVMNetError {
            #expect(e.description.contains("guest02 did not come up within 5 s"))
            #expect(e.description.contains("booting"))
        }
        #expect(guests.processes.isEmpty, "the guests it started are stopped again")
        #expect(try host.load(.default)?.guests == nil)
    }

    /// The dnsmasq config of each model, with two guests' static entries (golden).
    @Test(arguments: NetworkModel.allCases)
    func dnsmasqConfigPerModel(_ model: NetworkModel) throws {
        var s = try spec(model)
        s.mtu = model == .nat ? 1400 : s.mtu
        let gs = model == .bridged ? [] : try GuestPlanner.guests(GuestRequest(count: 2), spec: s, namespace: Self.ns, lanGateway: nil, lan: nil)
        let text = s.runsDnsmasq ? DnsmasqPlan(spec: s, guests: gs, folder: "/run/kvmnet/default", user: "dnsmasq").conf : "(no dnsmasq)\n"
        if let diff = Golden.check(text, "dnsmasq/\(model).conf") { Issue.record(Comment(rawValue: diff)) }
        #expect(s.runsDnsmasq == (model == .routed || model == .nat))
    }

    /// The seed of a disk-image guest per model: static models carry the address, DHCP models do not.
    @Test(arguments: NetworkModel.allCases)
    func noCloudSeedPerModel(_ model: NetworkModel) throws {
        let s = try spec(model)
        var req = GuestRequest(count: 1)
        if model == .bridged { req.addresses = [IPv4Address("10.241.96.90")!] }
        let g = try GuestPlanner.guests(req, spec: s, namespace: Self.ns, lanGateway: IPv4Address("10.241.96.1"),
                                        lan: CIDRv4("10.241.96.176/24"))[0]
        let files = NoCloudSeed.files(guest: g, spec: s, sshKeys: ["ssh-ed25519 AAAA test@example"])
        let text = files.keys.sorted().map { "== \($0)\n\(files[$0]!)" }.joined()
        if let diff = Golden.check(text, "seeds/\(model).txt") { Issue.record(Comment(rawValue: diff)) }
        #expect(files["kvmnet.env"]!.contains("KVMNET_IP=") == (model == .isolated || model == .bridged))
        #expect(files["network-config"]!.contains("dhcp4: true") == (model == .nat || model == .routed))
        #expect(!files["network-config"]!.contains("to: default"), "cloud-init 22.4 aborts on routes to default")
        #expect(try JSONSerialization.jsonObject(with: Data(files["meta-data"]!.utf8)) is [String: Any])
    }

    /// libvirt's isolated semantics with --dhcp on: a host address serving only DHCP and DNS,
    /// no router offered, everything else to the host refused; verify expects exactly that.
    @Test func isolatedWithDhcpServesOnlyDhcpAndDns() throws {
        let host = FakeHost.sandbox()
        var r = UpRequest(model: .isolated)
        r.dhcp = true
        r.firewall = .iptables
        let plan = try NetworkDriver(env: host.environment).plan(r)
        #expect(plan.spec.hostAddress?.description == "10.0.1.254/24")
        #expect(plan.spec.servesDHCP && plan.spec.servesDNS && !plan.spec.model.needsForwarding)
        let conf = DnsmasqPlan(spec: plan.spec, guests: [], folder: "/f", user: "dnsmasq").conf
        #expect(conf.contains("dhcp-option=option:router\n"))
        #expect(!conf.contains("option:router,"))
        let input = IptablesRuleset(spec: plan.spec).chains.first { $0.name == "KVMNET-IN-DEFAULT" }!.rules
        #expect(input.count == 4 && input.last!.contains("REJECT") && input.dropLast().allSatisfy { $0.contains("ACCEPT") })
        let gs = try GuestPlanner.guests(GuestRequest(count: 2), spec: plan.spec, namespace: Self.ns, lanGateway: nil, lan: nil)
        #expect(gs.map { $0.address!.description } == ["10.0.1.1/24", "10.0.1.2/24"] && gs.allSatisfy { $0.gateway == nil })
        let checks = VerifyPlan.checks(spec: plan.spec, guests: gs, bridgeAddress: IPv4Address("10.0.1.254"),
                                       uplinkAddress: IPv4Address("10.241.96.176"), outside: IPv4Address("10.241.96.1"))
        #expect(checks.first { $0.check == "guest01 → bridge address" }?.expected == .no)
        #expect(checks.first { $0.check == "guest01 → DNS on the bridge address" }?.expected == .yes)
        _ = try NetworkDriver(env: host.environment).up(r)
        #expect(host.sysctls["net/ipv4/ip_forward"] == "0")
        #expect(host.addressTable.contains { $0.interface == "br-in" && $0.address == "10.0.1.254" })
    }

    @Test func dynamicRangeLiesAboveTheStaticBlock() {
        let (a, b) = DnsmasqPlan.dynamicRange(subnet: CIDRv4("192.168.1.0/24")!, host: IPv4Address("192.168.1.254")!)
        #expect(a.description == "192.168.1.100" && b.description == "192.168.1.253")
        let (c, d) = DnsmasqPlan.dynamicRange(subnet: CIDRv4("10.9.0.0/28")!, host: IPv4Address("10.9.0.14")!)
        #expect(c.description == "10.9.0.8" && d.description == "10.9.0.13")
    }

    @Test(arguments: NetworkModel.allCases)
    func verifyExpectsTheSeedsTable(_ model: NetworkModel) throws {
        let s = try spec(model)
        var req = GuestRequest(count: 2)
        if model == .bridged { req.addresses = try GuestRequest.parseAddresses("10.241.96.90-10.241.96.91") }
        let gs = try GuestPlanner.guests(req, spec: s, namespace: Self.ns, lanGateway: IPv4Address("10.241.96.1"), lan: CIDRv4("10.241.96.176/24"))
        let bridge: IPv4Address? = model == .bridged ? IPv4Address("10.241.96.176") : s.hostAddress?.address
        let checks = VerifyPlan.checks(spec: s, guests: gs, bridgeAddress: bridge,
                                       uplinkAddress: IPv4Address("10.241.96.176"), outside: IPv4Address("10.241.96.1"))
        let table = checks.map { "\($0.check) \($0.target): \($0.expected.rawValue)" }.joined(separator: "\n") + "\n"
        if let diff = Golden.check(table, "verify/\(model).txt") { Issue.record(Comment(rawValue: diff)) }
        let expectNo = checks.filter { $0.expected == .no }.map(\.check)
        switch model {
        case .isolated: #expect(expectNo.count == 8)
        case .routed, .nat: #expect(expectNo == ["guest01 → host over IPv6 link-local", "guest02 → host over IPv6 link-local"])
        case .bridged: #expect(expectNo.isEmpty)
        }
    }

    @Test func hookAttachesOnlyTaps() throws {
        let host = FakeHost.sandbox()
        let driver = NetworkDriver(env: host.environment)
        _ = try driver.up(UpRequest(model: .nat))
        host.addLink("vif7.0", kind: "tun", mtu: 1400)
        try driver.hookUp(tap: "vif7.0", network: .default)
        let tap = host.linkTable.first { $0.name == "vif7.0" }!
        #expect(tap.isUp && tap.mtu == 1500 && tap.masterIndex == host.linkTable.first { $0.name == "br-in" }!.index)
        #expect(try host.load(.default)?.hookTaps == ["vif7.0"])
        #expect { try driver.hookUp(tap: "vif9.0", network: .default) } throws: {
            ($0 as? KVMNetError)?.description.contains("tap vif9.0 does not exist") == true
        }
        #expect { try driver.hookUp(tap: "eth0", network: .default) } throws: {
            ($0 as? KVMNetError)?.description.contains("eth0 is a veth interface, not a tap") == true
        }
        try driver.hookDown(tap: "vif7.0", network: .default)
        #expect(host.linkTable.first { $0.name == "vif7.0" }!.masterIndex == 0)
        #expect(try host.load(.default)?.hookTaps == [])
        var unprivileged = host.environment
        unprivileged.canAdministerNetwork = false
        try NetworkDriver(env: unprivileged).hookDown(tap: "vif7.0", network: .default)
        #expect(host.log.last?.contains("no CAP_NET_ADMIN") == true)
    }
}
