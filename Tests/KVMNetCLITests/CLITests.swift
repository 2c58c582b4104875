import Foundation
import Testing
import KVMNetTestSupport
@testable import KVMNetCLI
@testable import KVMNetCore

final class Captured: @unchecked Sendable {
    private let lock = NSLock()
    private var _out = "", _err = ""
    var out: String { lock.withLock { _out } }
    var err: String { lock.withLock { _err } }
    var console: Console {
        Console(out: { s in self.lock.withLock { self._out += s } }, err: { s in self.lock.withLock { self._err += s } })
    }
}

/// Runs the command line against a fake host as `main` would; returns status, stdout, stderr.
func kvmnet(_ args: [String], on host: FakeHost = FakeHost.sandbox()) -> (Int32, String, String) {
    let c = Captured()
    do {
        let inv = try KVMNetCLI.parse(args)
        return (KVMNetCLI.run(inv, env: host.environment, console: c.console), c.out, c.err)
    } catch let e as KVMNetError {
        return (e.exitCode, "", e.description)
    } catch {
        return (1, "", "\(error)")
    }
}

@Suite struct ParsingTests {
    @Test func upParsesEveryOption() throws {
        let inv = try KVMNetCLI.parse(["--netns", "host", "--state-dir", "/tmp/s", "up", "nat", "--name", "lab", "--bridge=br-lab",
                                       "--subnet", "10.9.0.0/24", "--address", "10.9.0.1", "--mtu", "9000", "--taps", "3",
                                       "--firewall", "iptables", "--dry-run", "--json"])
        #expect(inv.global == GlobalOptions(netns: "host", stateDir: "/tmp/s", configDir: nil))
        guard case .command(let c) = inv.action, let up = c as? UpCommand, let r = up.request else { Issue.record("not up"); return }
        #expect(r.model == .nat)
        #expect(r.name.rawValue == "lab")
        #expect(r.bridge?.rawValue == "br-lab")
        #expect(r.subnet?.description == "10.9.0.0/24")
        #expect(r.address?.description == "10.9.0.1")
        #expect(r.mtu == 9000)
        #expect(r.taps == 3)
        #expect(up.dryRun && up.json)
        #expect(!up.needsPrivilege || inv.global.netns != nil)
        #expect(inv.needsPrivilege, "--netns always needs root")
    }

    @Test func ifupAndIfdownLinksMeanTheHookCommand() throws {
        #expect(KVMNetCLI.rewrite(argv0: "/usr/local/bin/kvmnet-ifup", ["vif1.0"]) == ["hook", "ifup", "vif1.0"])
        #expect(KVMNetCLI.rewrite(argv0: "kvmnet-ifdown", ["vif1.0"]) == ["hook", "ifdown", "vif1.0"])
        #expect(KVMNetCLI.rewrite(argv0: "/usr/bin/kvmnet", ["status"]) == ["status"])
    }

    @Test func stateDirComesFromTheEnvironment() throws {
        let inv = try KVMNetCLI.parse(["status"], environment: ["KVMNET_STATE_DIR": "/tmp/x"])
        #expect(inv.global.stateDir == "/tmp/x")
    }

    @Test(arguments: [
        (["up", "host-only"], "unknown model 'host-only': choose one of isolated, routed, nat, bridged"),
        (["up", "nat", "--subnet", "192.168.1.0"], "invalid subnet '192.168.1.0'"),
        (["up", "nat", "--subnet", "192.168.1.0/33"], "invalid subnet '192.168.1.0/33'"),
        (["up", "nat", "--address", "10.0.0.1"], "address 10.0.0.1 is not a host address inside the subnet 192.168.1.0/24"),
        (["up", "nat", "--subnet", "10.1.0.0/16", "--address", "10.1.255.255"], "not a host address inside the subnet 10.1.0.0/16"),
        (["up", "nat", "--bridge", "averyverylongbridge"], "'averyverylongbridge' is 19 bytes long"),
        (["up", "bridged", "--uplink", "averyverylonguplink"], "'averyverylonguplink'"),
        (["up", "nat", "--name", "Bad_Name"], "invalid network name 'Bad_Name'"),
        (["up", "nat", "--mtu", "12"], "invalid value '12' for --mtu"),
        (["up", "nat", "--taps", "1024"], "at most 1023 ports"),
        (["up", "bridged", "--taps", "1023"], "(one is the uplink), so at most 1022 taps"),
        (["up", "nat", "--firewall", "pf"], "invalid firewall backend 'pf'"),
        (["up", "isolated", "--address", "10.0.1.1"], "an isolated network has no host address (unless it serves --dhcp on)"),
        (["up", "bridged", "--dhcp", "on"], "a bridged network never runs DHCP or DNS"),
        (["up", "nat", "--dhcp", "maybe"], "invalid value 'maybe' for --dhcp"),
        (["up", "nat", "--frobnicate"], "unknown option '--frobnicate'"),
        (["up", "--bridge", "x"], "network options need a MODEL"),
        (["up", "nat", "--from", "x.json"], "MODEL and --from exclude each other"),
        (["define"], "missing MODEL"),
        (["down", "--all", "--name", "x"], "--name and --all exclude each other"),
        (["fly"], "unknown command 'fly'"),
        (["--netns", "a/b", "status"], "invalid namespace name 'a/b'"),
        (["up", "nat", "--subnet", "01.2.3.0/24"], "invalid subnet '01.2.3.0/24'"),
        (["up", "nat", "--subnet", "224.0.0.0/24"], "subnet 224.0.0.0/24 is multicast"),
        (["up", "nat", "--subnet", "0.0.0.0/0"], "wider than a /8"),
        (["status", "--json", "--json"], "option '--json' given twice"),
        (["up", "nat", "--memory", "256"], "--memory is a guest option: it needs --guests N"),
        (["up", "bridged", "--guests", "1", "--guest-ip", "1.2.3.0-1.2.255.255"], "at most 4096 addresses"),
        (["exec", "--", "true"], "name a GUEST, or give --console SOCKET"),
        (["define", "nat", "--guests", "2"], "unknown option '--guests'"),
    ])
    func badInputExits64NamingTheValue(_ args: [String], _ message: String) {
        let (status, out, err) = kvmnet(args)
        #expect(status == 64)
        #expect(out.isEmpty)
        #expect(err.contains(message), "\(err)")
    }

    @Test func helpForEveryCommandIsGolden() {
        var all = KVMNetCLI.rootHelp
        for c in KVMNetCLI.commands { all += "\n==== kvmnet \(c.spec.name) --help\n" + c.spec.help }
        if let diff = Golden.check(all, "help.txt") { Issue.record(Comment(rawValue: diff)) }
    }

    /// A walk of the command tree: every command answers --help and -h, and documents each option.
    @Test func everyCommandHasHelpListingItsOptions() throws {
        for c in KVMNetCLI.commands {
            for flag in ["--help", "-h"] {
                let inv = try KVMNetCLI.parse([c.spec.name, flag])
                guard case .help(let text) = inv.action else { Issue.record("\(c.spec.name) \(flag)"); continue }
                for o in c.spec.options { #expect(text.contains(o.name), "\(c.spec.name) help lacks \(o.name)") }
                #expect(text.contains("USAGE: kvmnet \(c.spec.name)"))
            }
        }
        guard case .help = try KVMNetCLI.parse(["--help"]).action else { Issue.record("root help"); return }
        guard case .version = try KVMNetCLI.parse(["--version"]).action else { Issue.record("version"); return }
    }
}

@Suite struct CommandTests {
    @Test(arguments: NetworkModel.allCases)
    func dryRunChangesNothingAndIsGolden(_ model: NetworkModel) {
        let host = FakeHost.sandbox()
        let before = host.snapshot()
        let (status, out, _) = kvmnet(["up", model.rawValue, "--dry-run"], on: host)
        #expect(status == 0)
        #expect(host.snapshot() == before)
        #expect(host.records.isEmpty)
        if let diff = Golden.check(out, "dry-run/\(model).txt") { Issue.record(Comment(rawValue: diff)) }
    }

    @Test func upJsonPrintsExactlyOneDocument() throws {
        let host = FakeHost.sandbox()
        let (status, out, err) = kvmnet(["up", "nat", "--taps", "2", "--json"], on: host)
        #expect(status == 0, "\(err)")
        let doc = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        #expect(doc?["schemaVersion"] as? Int == 1)
        #expect(doc?["action"] as? String == "created")
        #expect(err.contains("bringing up"), "progress goes to stderr")
        if let diff = Golden.check(out, "json/up-nat.json") { Issue.record(Comment(rawValue: diff)) }
    }

    @Test func statusShowsDriftAndExits1() throws {
        let host = FakeHost.sandbox()
        #expect(kvmnet(["up", "routed", "--taps", "1"], on: host).0 == 0)
        let (ok, text, _) = kvmnet(["status"], on: host)
        #expect(ok == 0)
        #expect(text.contains("network default: routed"))
        #expect(text.contains("ports     vif1.0"))
        #expect(text.contains("net.ipv4.ip_forward=1 (was 0)"))
        host.sysctls["net/ipv4/ip_forward"] = "0"
        let (bad, drift, _) = kvmnet(["status"], on: host)
        #expect(bad == 1)
        #expect(drift.contains("net.ipv4.ip_forward is 0, kvmnet set 1: someone changed it"))
        let (_, json, _) = kvmnet(["status", "--json"], on: host)
        let doc = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        let nets = doc?["networks"] as? [[String: Any]]
        #expect((nets?.first?["drift"] as? [String])?.count == 1)
    }

    @Test func downTwiceSaysSoAndExits0() {
        let host = FakeHost.sandbox()
        let before = host.snapshot()
        #expect(kvmnet(["up", "nat"], on: host).0 == 0)
        let (s1, o1, _) = kvmnet(["down"], on: host)
        #expect(s1 == 0 && o1.contains("network default is down"))
        let (s2, o2, _) = kvmnet(["down"], on: host)
        #expect(s2 == 0 && o2.contains("network default is not up"))
        #expect(host.snapshot() == before)
    }

    @Test func downAllTakesEveryNetwork() {
        let host = FakeHost.sandbox()
        let before = host.snapshot()
        #expect(kvmnet(["up", "nat"], on: host).0 == 0)
        #expect(kvmnet(["up", "isolated", "--name", "iso", "--subnet", "10.5.0.0/24"], on: host).0 == 0)
        #expect(host.records.count == 2)
        #expect(host.linkTable.contains { $0.name == "kb-iso" })
        let (s, out, _) = kvmnet(["down", "--all", "--dry-run"], on: host)
        #expect(s == 0 && out.contains("undo: created bridge kb-iso"))
        #expect(host.records.count == 2)
        #expect(kvmnet(["down", "--all"], on: host).0 == 0)
        #expect(host.snapshot() == before)
    }

    @Test func errorsWithJsonAreOneJsonDocument() throws {
        let host = FakeHost.sandbox()
        host.addLink("br-in", kind: "bridge")
        let (s, out, err) = kvmnet(["up", "nat", "--json"], on: host)
        #expect(s == 1 && err.contains("br-in already exists"))
        let doc = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        let e = doc?["error"] as? [String: Any]
        #expect(e?["exitCode"] as? Int == 1)
        #expect((e?["message"] as? String)?.contains("br-in") == true)
    }

    @Test func defineThenUpByNameThenUndefine() throws {
        let host = FakeHost.sandbox()
        let before = host.snapshot()
        let guests = FakeGuests()
        func run(_ args: [String]) -> (Int32, String, String) {
            let c = Captured()
            do {
                return (KVMNetCLI.run(try KVMNetCLI.parse(args), env: host.environment(guests: guests), console: c.console), c.out, c.err)
            } catch let e as KVMNetError { return (e.exitCode, "", e.description) } catch { return (1, "", "\(error)") }
        }
        #expect(run(["up", "--name", "lab"]).0 == 64, "not defined yet")
        let (d, out, _) = run(["define", "routed", "--name", "lab", "--subnet", "10.3.0.0/24"])
        #expect(d == 0 && out.contains("defined network lab (routed)"))
        #expect(host.snapshot() == before, "define changes nothing on the host")
        #expect(guests.files["/etc/kvmnet/hooks/lab/qemu-ifup"]?.contains("--config-dir '/etc/kvmnet' hook ifup \"$1\" --name lab") == true)
        let (h, hooks, _) = run(["hooks", "--name", "lab"])
        #expect(h == 0 && hooks.contains("script=/etc/kvmnet/hooks/lab/qemu-ifup,downscript=/etc/kvmnet/hooks/lab/qemu-ifdown"))
        #expect(run(["up", "--name", "lab", "--subnet", "10.4.0.0/24"]).0 == 64, "a defined network keeps its options")
        #expect(run(["up", "--name", "lab"]).0 == 0)
        #expect(host.addressTable.contains { $0.interface == "kb-lab" && $0.address == "10.3.0.254" })
        #expect(run(["down", "--name", "lab"]).0 == 0)
        #expect(run(["undefine", "--name", "lab"]).1.contains("no longer defined"))
        #expect(run(["undefine", "--name", "lab"]).1.contains("not defined"))
        #expect(host.snapshot() == before)
    }

    @Test func failureExits1NamingTheStep() {
        let host = FakeHost.sandbox()
        host.failOnChange = 3
        let (s, _, err) = kvmnet(["up", "nat"], on: host)
        #expect(s == 1)
        #expect(err.contains("step 3"), "\(err)")
        #expect(err.contains("every change was undone"))
    }
}
