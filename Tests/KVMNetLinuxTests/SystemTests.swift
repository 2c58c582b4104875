import Foundation
import Glibc
import Testing
@testable import KVMNetCore
@testable import KVMNetLinux

/// The built `kvmnet` binary against the real kernel, in namespaces the test creates:
/// a pretend host (eth0 10.241.96.176/24, default via 10.241.96.1) and a pretend outside LAN.
struct Sandbox {
    let host: String
    let outside: String
    let stateDir: String
    let runner = PosixCommandRunner()

    static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kvmnet").path
    }

    static var available: Bool { getuid() == 0 && access(binary, X_OK) == 0 }

    init(_ tag: String) throws {
        let id = "\(tag)-\(getpid())"
        host = "kvt-h-\(id)"
        outside = "kvt-o-\(id)"
        stateDir = NSTemporaryDirectory() + "kvmnet-state-\(id)"
        try sh("ip", "netns", "add", host)
        try sh("ip", "netns", "add", outside)
        try sh("ip", "-n", host, "link", "set", "lo", "up")
        try sh("ip", "-n", outside, "link", "set", "lo", "up")
        try sh("ip", "-n", host, "link", "add", "eth0", "address", "02:00:0a:f1:60:b0", "type", "veth", "peer", "name", "lan0", "netns", outside)
        try sh("ip", "-n", host, "addr", "add", "10.241.96.176/24", "dev", "eth0")
        try sh("ip", "-n", host, "link", "set", "eth0", "up")
        try sh("ip", "-n", outside, "addr", "add", "10.241.96.1/24", "dev", "lan0")
        try sh("ip", "-n", outside, "link", "set", "lan0", "up")
        try sh("ip", "-n", host, "route", "add", "default", "via", "10.241.96.1", "dev", "eth0")
        // Let IPv6 duplicate address detection settle, as it has on any real host.
        for _ in 0..<50 where !(try sh("ip", "-n", host, "-6", "addr", "show", "tentative")).isEmpty {
            usleep(100_000)
        }
    }

    func destroy() {
        _ = try? runner.run(["ip", "netns", "del", host], stdin: nil)
        _ = try? runner.run(["ip", "netns", "del", outside], stdin: nil)
        try? FileManager.default.removeItem(atPath: stateDir)
    }

    @discardableResult
    func sh(_ argv: String..., stdin: String? = nil) throws -> String {
        let r = try runner.run(argv, stdin: stdin)
        guard r.status == 0 else { throw KVMNetError.failure(CommandFailure.describe(argv: argv, result: r)) }
        return r.stdout
    }

    func inHost(_ argv: String..., stdin: String? = nil) throws -> String {
        let r = try runner.run(["ip", "netns", "exec", host] + argv, stdin: stdin)
        guard r.status == 0 else { throw KVMNetError.failure(CommandFailure.describe(argv: argv, result: r)) }
        return r.stdout
    }

    /// `ip link`'s group of a link in the pretend host: "default" or a number.
    func linkGroup(_ link: String) throws -> String {
        let json = try inHost("ip", "-j", "link", "show", link)
        let l = (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])?.first
        return try #require(l?["group"] as? String, "no group in `ip -j link show \(link)`")
    }

    func kvmnet(_ args: String...) throws -> CommandResult {
        try runner.run([Self.binary, "--netns", host, "--state-dir", stateDir] + args, stdin: nil)
    }

    /// Everything that has meaning in the host namespace, with timers, counters, comments and
    /// handles removed, and the empty built-in tables iptables-nft registers on first use.
    func snapshot() throws -> String {
        var parts: [String] = []
        parts.append(try inHost("ip", "-d", "link", "show"))
        parts.append(try inHost("ip", "addr", "show"))
        parts.append(try inHost("ip", "route", "show", "table", "all"))
        parts.append(try inHost("ip", "-6", "route", "show", "table", "all"))
        parts.append(Self.withoutEmptyBuiltinTables(try inHost("iptables-save")))
        parts.append(Self.withoutEmptyNftTables(try inHost("nft", "list", "ruleset")))
        for key in ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "net/ipv6/conf/eth0/disable_ipv6",
                    "net/ipv6/conf/eth0/accept_ra", "net/ipv4/conf/all/rp_filter"] {
            parts.append(key + "=" + (try inHost("cat", "/proc/sys/" + key)))
        }
        var text = parts.joined(separator: "\n")
        for pattern in [#"[a-z_]+_timer\s+[0-9.]+"#, #"\[[0-9]+:[0-9]+\]"#, #"(?m)^#.*$"#, #"# handle [0-9]+"#,
                        #"counter packets [0-9]+ bytes [0-9]+"#, #"valid_lft \S+ preferred_lft \S+"#] {
            text = text.replacingOccurrences(of: pattern, with: "", options: .regularExpression)
        }
        // Blank lines carry no meaning (they are what is left of dropped tables and comments).
        return text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.joined(separator: "\n")
    }

    static func withoutEmptyBuiltinTables(_ save: String) -> String {
        save.components(separatedBy: "COMMIT").filter { block in
            let lines = block.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("*") }
            return lines.contains { !($0.hasPrefix(":") && $0.contains(" ACCEPT ")) }
        }.joined(separator: "COMMIT")
    }

    /// Drops base chains with policy accept and no rules (iptables-nft registers them on first
    /// use and never removes them), then tables left with nothing in them.
    static func withoutEmptyNftTables(_ ruleset: String) -> String {
        var out: [String] = []
        var table: [String] = []
        var chain: [String] = []
        var inChain = false
        func flushTable() {
            if table.count > 1 { out += table + ["}"] }
            table = []
        }
        for raw in ruleset.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("table ") { table = [line]; continue }
            if line.hasPrefix("chain ") { chain = [line]; inChain = true; continue }
            if inChain {
                if line == "}" {
                    let body = chain.dropFirst()
                    let empty = body.allSatisfy { $0.hasPrefix("type ") && $0.hasSuffix("policy accept;") }
                    if !empty { table += chain + ["}"] }
                    inChain = false
                } else { chain.append(line) }
                continue
            }
            if line == "}" { flushTable(); continue }
            table.append(line)
        }
        return out.joined(separator: "\n")
    }
}

let needsRootAndBinary = Testing.ConditionTrait.enabled(if: Sandbox.available,
    "needs root and the built kvmnet binary: creates network namespaces")

@Suite(.serialized) struct SystemTests {
    /// Foreign objects that kvmnet must not touch: a bridge whose name starts with br-in, a
    /// MASQUERADE rule, a chain jumped to from FORWARD, a native nft table.
    func addForeignObjects(_ s: Sandbox) throws {
        _ = try s.inHost("ip", "link", "add", "br-inx", "type", "bridge")
        _ = try s.inHost("iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", "172.30.0.0/16", "-j", "MASQUERADE")
        _ = try s.inHost("iptables", "-w", "-N", "FOREIGN-FWD")
        _ = try s.inHost("iptables", "-w", "-A", "FOREIGN-FWD", "-s", "172.30.0.0/16", "-j", "ACCEPT")
        _ = try s.inHost("iptables", "-w", "-A", "FORWARD", "-j", "FOREIGN-FWD")
        _ = try s.inHost("nft", "-f", "-", stdin: """
            table inet foreign {
              chain input { type filter hook input priority 10; policy accept; tcp dport 9999 accept; }
            }
            """)
    }

    @Test(needsRootAndBinary, arguments: NetworkModel.allCases, ["iptables", "nftables"])
    func upUpDownLeavesTheNamespaceAsFound(_ model: NetworkModel, _ firewall: String) throws {
        let s = try Sandbox(model.rawValue + firewall.prefix(1))
        defer { s.destroy() }
        try addForeignObjects(s)
        let before = try s.snapshot()

        var args = ["up", model.rawValue, "--taps", "2", "--firewall", firewall]
        if model == .bridged { args += ["--uplink", "eth0"] }
        let up = try s.runner.run([Sandbox.binary, "--netns", s.host, "--state-dir", s.stateDir] + args, stdin: nil)
        #expect(up.status == 0, "\(up.stderr)")
        try checkKernel(s, model, firewall: firewall)
        let afterUp = try s.snapshot()

        let again = try s.runner.run([Sandbox.binary, "--netns", s.host, "--state-dir", s.stateDir] + args, stdin: nil)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try s.snapshot() == afterUp, "a second up changed the namespace")
        #expect(try s.kvmnet("status").status == 0)

        // Someone else's link in the taps' link group: `down` deletes that group, never this link.
        let group = try s.linkGroup("vif1.0")
        #expect(group != "default", "the taps are in no link group")
        _ = try s.inHost("ip", "link", "add", "theirs0", "group", group, "type", "veth", "peer", "name", "theirs1")
        let down = try s.kvmnet("down")
        #expect(down.status == 0, "\(down.stderr)")
        #expect(try s.linkGroup("theirs0") == "default", "the foreign link did not survive down in its group")
        _ = try s.inHost("ip", "link", "del", "theirs0")
        let after = try s.snapshot()
        #expect(after == before, "down did not restore the namespace:\n\(lineDiff(before, after))")
        let twice = try s.kvmnet("down")
        #expect(twice.status == 0 && twice.stdout.contains("not up"))
    }

    /// The uplink's global IPv6 address and IPv6 default route move to the bridge and come back.
    @Test(needsRootAndBinary) func bridgedMovesIPv6AndPutsItBack() throws {
        let s = try Sandbox("v6")
        defer { s.destroy() }
        _ = try s.inHost("ip", "-6", "addr", "add", "2001:db8::176/64", "dev", "eth0", "nodad")
        _ = try s.inHost("ip", "-6", "route", "add", "default", "via", "2001:db8::1", "dev", "eth0", "metric", "1024")
        let before = try s.snapshot()
        let up = try s.kvmnet("up", "bridged", "--uplink", "eth0")
        #expect(up.status == 0, "\(up.stderr)")
        #expect(try s.inHost("ip", "-6", "addr", "show", "dev", "br-in").contains("2001:db8::176/64"))
        #expect(try s.inHost("ip", "-6", "route").contains("default via 2001:db8::1 dev br-in"))
        #expect(!(try s.inHost("ip", "-6", "addr", "show", "dev", "eth0")).contains("2001:db8::176"))
        #expect(try s.kvmnet("down").status == 0)
        #expect(try s.snapshot() == before)
    }

    /// The move is exact: a secondary address stays secondary, an onlink route, a route of
    /// another table and a route with metrics (mtu, advmss) go to the bridge with their
    /// attributes and come back; the namespace after `down` is the one before `up`.
    @Test(needsRootAndBinary) func bridgedMoveIsExact() throws {
        let s = try Sandbox("exact")
        defer { s.destroy() }
        _ = try s.inHost("ip", "addr", "add", "10.241.96.177/24", "dev", "eth0")
        _ = try s.inHost("ip", "-6", "addr", "add", "2001:db8::176/64", "dev", "eth0", "nodad")
        _ = try s.inHost("ip", "-6", "addr", "add", "2001:db8::177/64", "dev", "eth0", "nodad")
        _ = try s.inHost("ip", "route", "add", "10.9.9.0/24", "via", "10.99.0.1", "dev", "eth0", "onlink")
        _ = try s.inHost("ip", "route", "add", "default", "via", "10.241.96.1", "dev", "eth0", "table", "100")
        _ = try s.inHost("ip", "route", "add", "10.8.0.0/16", "via", "10.241.96.1", "dev", "eth0", "mtu", "1400", "advmss", "1300")
        _ = try s.inHost("ip", "-6", "route", "add", "2001:db8:9::/48", "via", "2001:db8::1", "dev", "eth0", "table", "100", "mtu", "1300")
        let before = try s.snapshot()

        let up = try s.kvmnet("up", "bridged", "--uplink", "eth0")
        #expect(up.status == 0, "\(up.stderr)")
        let v4 = try s.inHost("ip", "-4", "-o", "addr", "show", "dev", "br-in").split(separator: "\n").map(String.init)
        #expect(v4.count == 2 && v4[0].contains("inet 10.241.96.176/24") && !v4[0].contains("secondary")
                && v4[1].contains("inet 10.241.96.177/24") && v4[1].contains("secondary"), "\(v4)")
        let v6 = try s.inHost("ip", "-6", "-o", "addr", "show", "dev", "br-in", "scope", "global")
        #expect(v6.range(of: "2001:db8::177/64")?.lowerBound ?? v6.endIndex < v6.range(of: "2001:db8::176/64")?.lowerBound ?? v6.startIndex,
                "IPv6 addresses in their original order:\n\(v6)")
        let routes = try s.inHost("ip", "route", "show", "table", "all") + (try s.inHost("ip", "-6", "route", "show", "table", "all"))
        for want in ["10.241.96.0/24 dev br-in proto kernel scope link src 10.241.96.176",
                     "10.9.9.0/24 via 10.99.0.1 dev br-in onlink",
                     "default via 10.241.96.1 dev br-in table 100",
                     "10.8.0.0/16 via 10.241.96.1 dev br-in mtu 1400 advmss 1300",
                     "2001:db8:9::/48 via 2001:db8::1 dev br-in table 100 metric 1024 mtu 1300"] {
            #expect(routes.contains(want), "missing \(want) in\n\(routes)")
        }
        let onEth0 = routes.split(separator: "\n").filter { $0.contains("dev eth0") && !$0.contains("fe80::") && !$0.contains("ff00::") }
        #expect(onEth0.isEmpty, "left on eth0: \(onEth0)")
        let status = try s.kvmnet("status")
        #expect(status.status == 0, "\(status.stdout)\(status.stderr)")

        // A moved route of another table that goes missing is drift.
        _ = try s.inHost("ip", "route", "del", "default", "via", "10.241.96.1", "dev", "br-in", "table", "100")
        let drift = try s.kvmnet("status")
        #expect(drift.status == 1 && drift.stdout.contains("table 100"), "\(drift.stdout)\(drift.stderr)")
        _ = try s.inHost("ip", "route", "add", "default", "via", "10.241.96.1", "dev", "br-in", "table", "100")

        let down = try s.kvmnet("down")
        #expect(down.status == 0, "\(down.stderr)")
        let after = try s.snapshot()
        #expect(after == before, "down did not restore the namespace:\n\(lineDiff(before, after))")
    }

    @Test(needsRootAndBinary) func aDHCPLeasedUplinkNeedsForce() throws {
        let s = try Sandbox("dhcp")
        defer { s.destroy() }
        _ = try s.inHost("ip", "addr", "flush", "dev", "eth0")
        _ = try s.inHost("ip", "addr", "add", "10.241.96.176/24", "dev", "eth0", "valid_lft", "3600", "preferred_lft", "3600")
        _ = try s.inHost("ip", "route", "replace", "default", "via", "10.241.96.1", "dev", "eth0")
        let before = try s.snapshot()
        let refused = try s.kvmnet("up", "bridged")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("DHCP") && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(try s.snapshot() == before)
        let forced = try s.kvmnet("up", "bridged", "--force")
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try s.kvmnet("down").status == 0)
    }

    /// SIGTERM in the middle of a long `up` rolls back and exits 143; SIGKILL leaves a record
    /// from which `down` removes everything.
    @Test(needsRootAndBinary) func signalsDuringUp() throws {
        let s = try Sandbox("sig")
        defer { s.destroy() }
        let before = try s.snapshot()
        for (sig, expected) in [(SIGTERM, Int32(143)), (SIGKILL, Int32(128 + 9))] {
            var pid: pid_t = 0
            let argv = [Sandbox.binary, "--netns", s.host, "--state-dir", s.stateDir, "up", "nat", "--taps", "600"]
            let cArgs = argv.map { strdup($0) } + [nil]
            defer { cArgs.forEach { free($0) } }
            #expect(quietSpawn(&pid, cArgs) == 0)
            // Wait until the bridge exists, so the signal lands in the middle of the work.
            for _ in 0..<200 {
                if (try? s.inHost("ip", "link", "show", "vif3.0")) != nil { break }
                usleep(10_000)
            }
            kill(pid, sig)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            #expect(code == expected, "signal \(sig): exit \(code)")
            if sig == SIGKILL {
                #expect(try s.kvmnet("status").status == 1, "a killed up shows as drift")
                #expect(try s.kvmnet("down").status == 0)
            }
            #expect(try s.snapshot() == before, "after signal \(sig)")
        }
    }

    /// Two `up`s at once on one network serialize: one bridge, one copy of every rule.
    @Test(needsRootAndBinary) func concurrentUpsSerialize() throws {
        let s = try Sandbox("conc")
        defer { s.destroy() }
        let before = try s.snapshot()
        var pids: [pid_t] = []
        for _ in 0..<4 {
            var pid: pid_t = 0
            let argv = [Sandbox.binary, "--netns", s.host, "--state-dir", s.stateDir, "up", "nat", "--taps", "4", "--firewall", "iptables"]
            let cArgs = argv.map { strdup($0) } + [nil]
            defer { cArgs.forEach { free($0) } }
            _ = quietSpawn(&pid, cArgs)
            pids.append(pid)
        }
        for p in pids {
            var status: Int32 = 0
            waitpid(p, &status, 0)
            #expect(status == 0)
        }
        let save = try s.inHost("iptables-save")
        #expect(save.components(separatedBy: "-j KVMNET-FWI-DEFAULT").count == 2, "one jump from FORWARD")
        #expect(save.components(separatedBy: "! -d 192.168.1.0/24 -m comment --comment \"kvmnet:default\" -j MASQUERADE").count == 2,
                "one MASQUERADE rule")
        #expect(try s.inHost("ip", "-o", "link", "show", "type", "bridge").split(separator: "\n").count == 1)
        #expect(try s.kvmnet("down").status == 0)
        #expect(try s.snapshot() == before)
    }

    /// `--image`: each guest boots its own qcow2 overlay in the state folder; the base is never written.
    @Test(needsRootAndBinary, .enabled(if: access("/usr/bin/qemu-img", X_OK) == 0, "needs qemu-utils"))
    func imageGuestsUseOverlays() throws {
        let s = try Sandbox("img")
        defer { s.destroy() }
        let base = s.stateDir + "-base.qcow2"
        defer { unlink(base) }
        try s.sh("qemu-img", "create", "-q", "-f", "qcow2", base, "16M")
        let sum = try s.sh("sha256sum", base)
        let up = try s.kvmnet("up", "isolated", "--guests", "1", "--image", base, "--accel", "tcg", "--boot-wait", "0")
        #expect(up.status == 0, "\(up.stderr)")
        let overlay = s.stateDir + "/netns-\(s.host)/default/guest01.qcow2"
        let info = try s.sh("qemu-img", "info", "--output=json", "-U", overlay)
        #expect(info.contains("\"backing-filename\": \"\(base)\""), "\(info)")
        #expect(try s.kvmnet("status").stdout.contains("guest01   running"))
        #expect(try s.kvmnet("down", "--timeout", "0").status == 0)
        #expect(access(overlay, F_OK) != 0, "down removes the overlay")
        #expect(try s.sh("sha256sum", base) == sum, "the base image was written")
    }

    func checkKernel(_ s: Sandbox, _ model: NetworkModel, firewall: String) throws {
        let json = try s.inHost("ip", "-d", "-j", "link", "show", "br-in")
        let link = try #require((try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])?.first)
        let info = (link["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
        #expect(info?["stp_state"] as? Int == 0)
        #expect(info?["forward_delay"] as? Int == 0)
        // The bridge joins its taps' link group (one request deletes them all), unless bridged.
        #expect((try s.linkGroup("br-in") == s.linkGroup("vif1.0")) == (model != .bridged))
        let ports = try s.inHost("ip", "-o", "link", "show", "master", "br-in")
        #expect(ports.contains("vif1.0") && ports.contains("vif2.0"))
        let fwd = try s.inHost("cat", "/proc/sys/net/ipv4/ip_forward").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(fwd == (model.needsForwarding ? "1" : "0"))
        let addrs = try s.inHost("ip", "addr", "show", "dev", "br-in")
        let save = firewall == "iptables" ? try s.inHost("iptables-save") : try s.inHost("nft", "list", "table", "inet", "kvmnet")
        #expect(save.contains(firewall == "iptables" ? "-A FORWARD -m comment --comment \"kvmnet:default\" -j KVMNET-FWI-DEFAULT"
                                                     : "chain fwd-default"))
        switch model {
        case .isolated, .routed, .nat:
            #expect(try s.inHost("cat", "/proc/sys/net/ipv6/conf/br-in/disable_ipv6").hasPrefix("1"))
            #expect(!addrs.contains("inet6"), "the bridge has an IPv6 address:\n\(addrs)")
            #expect(addrs.contains("inet 192.168.1.254/24") == model.hasHostAddress)
            #expect(save.contains(firewall == "iptables" ? "-j KVMNET-NAT-DEFAULT" : "masquerade") == (model == .nat))
        case .bridged:
            #expect(addrs.contains("inet 10.241.96.176/24"))
            #expect(link["address"] as? String == "02:00:0a:f1:60:b0")
            let eth0 = try s.inHost("ip", "-o", "link", "show", "eth0")
            #expect(eth0.contains("master br-in"))
            let routes = try s.inHost("ip", "route")
            #expect(routes.contains("default via 10.241.96.1 dev br-in"))
            let ping = try s.runner.run(["ip", "netns", "exec", s.host, "busybox", "ping", "-c", "1", "-W", "2", "10.241.96.1"], stdin: nil)
            #expect(ping.status == 0, "the host lost its LAN once bridged: \(ping.stdout)")
        }
    }

    @Test(needsRootAndBinary) func badInputChangesNothing() throws {
        let s = try Sandbox("bad")
        defer { s.destroy() }
        _ = try s.inHost("ip", "link", "add", "br-in", "type", "bridge")
        let before = try s.snapshot()
        let foreign = try s.kvmnet("up", "nat")
        #expect(foreign.status == 1)
        #expect(foreign.stderr.contains("br-in already exists and was not created by kvmnet"))
        let missing = try s.kvmnet("up", "bridged", "--uplink", "eth7", "--bridge", "br-x")
        #expect(missing.status == 1 && missing.stderr.contains("eth7"))
        let overlap = try s.kvmnet("up", "routed", "--subnet", "10.241.96.0/24", "--bridge", "br-y")
        #expect(overlap.status == 1 && overlap.stderr.contains("eth0"))
        let usage = try s.kvmnet("up", "mesh")
        #expect(usage.status == 64)
        // --json: one error document on stdout, a usage error included.
        for (args, code) in [(["up", "mesh", "--json"], 64), (["up", "nat", "--taps", "5000", "--json"], 64),
                             (["up", "nat", "--json"], 1)] {
            let r = try s.runner.run([Sandbox.binary, "--netns", s.host, "--state-dir", s.stateDir] + args, stdin: nil)
            let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            let error = doc?["error"] as? [String: Any]
            #expect(r.status == Int32(code) && error?["exitCode"] as? Int == code && error?["message"] is String,
                    "\(args): \(r.stdout)")
        }
        #expect(try s.snapshot() == before)
        let nons = try s.runner.run([Sandbox.binary, "--netns", "kvt-no-such-ns", "status"], stdin: nil)
        #expect(nons.status == 1 && nons.stderr.contains("kvt-no-such-ns"))
    }

    /// A firewalld-like table whose forward chain drops by default: `up` fails naming it, on
    /// both backends, and changes nothing; `doctor` reports it.
    @Test(needsRootAndBinary) func aFirewalldLikeTableStopsUp() throws {
        let s = try Sandbox("fwd")
        defer { s.destroy() }
        _ = try s.inHost("nft", "-f", "-", stdin: """
            table inet firewalld {
              chain filter_FORWARD { type filter hook forward priority filter + 10; policy drop; }
            }
            """)
        let before = try s.snapshot()
        for backend in ["auto", "iptables", "nftables"] {
            let r = try s.kvmnet("up", "nat", "--firewall", backend)
            #expect(r.status == 1, "\(backend): \(r.stderr)")
            #expect(r.stderr.contains("nft table inet firewalld chain filter_FORWARD"), "\(r.stderr)")
        }
        #expect(try s.snapshot() == before)
        let doctor = try s.kvmnet("doctor")
        #expect(doctor.status == 1 && doctor.stdout.contains("inet firewalld"))
    }

    /// DHCP and DNS without qemu: a client namespace on a veth in the bridge runs busybox udhcpc.
    /// A static entry (guest01's MAC; the guest itself boots a blank disk), a dynamic lease,
    /// router, DNS server, MTU, names resolving through the bridge address; a 0700 state
    /// folder does not hide the static entries.
    @Test(needsRootAndBinary, .enabled(if: access("/usr/sbin/dnsmasq", X_OK) == 0, "needs dnsmasq-base"),
          arguments: ["iptables", "nftables"])
    func dhcpAndDnsServeStaticAndDynamicLeases(_ firewall: String) throws {
        let s = try Sandbox("dhcp" + firewall.prefix(1))
        let client = s.host + "-c"
        defer { _ = try? s.runner.run(["ip", "netns", "del", client], stdin: nil); s.destroy() }
        try FileManager.default.createDirectory(atPath: s.stateDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let disk = s.stateDir + "/blank.qcow2"
        try s.sh("qemu-img", "create", "-q", "-f", "qcow2", disk, "8M")
        let before = try s.snapshot()
        let up = try s.kvmnet("up", "nat", "--mtu", "1400", "--firewall", firewall, "--guests", "1", "--image", disk, "--accel", "tcg",
                              "--boot-wait", "0")
        #expect(up.status == 0, "\(up.stderr)")
        let json = try s.kvmnet("status", "--json").stdout
        let mac = try #require(json.firstMatch(of: /"mac" : "([0-9a-f:]+)"/)?.1)
        try s.sh("ip", "netns", "add", client)
        try s.sh("ip", "-n", s.host, "link", "add", "c1", "type", "veth", "peer", "name", "eth0", "netns", client)
        try s.sh("ip", "-n", s.host, "link", "set", "c1", "master", "br-in", "mtu", "1400", "up")
        try s.sh("ip", "-n", client, "link", "set", "lo", "up")
        let script = s.stateDir + "/udhcpc.sh"
        try "#!/bin/sh\n[ \"$1\" = bound ] || exit 0\nip addr add $ip/$mask dev $interface\necho \"ip=$ip router=$router dns=$dns mtu=$mtu domain=$domain\"\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        func lease(_ mac: String) throws -> String {
            _ = try? s.runner.run(["ip", "-n", client, "addr", "flush", "dev", "eth0"], stdin: nil)
            try s.sh("ip", "-n", client, "link", "set", "eth0", "down")
            try s.sh("ip", "-n", client, "link", "set", "eth0", "address", mac, "up")
            return try s.sh("ip", "netns", "exec", client, "timeout", "15", "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-s", script, "-O", "mtu")
        }
        let fixed = try lease(String(mac))
        #expect(fixed.contains("ip=192.168.1.1 router=192.168.1.254 dns=192.168.1.254 mtu=1400 domain=default.kvmnet"), "\(fixed)")
        let dynamic = try lease("02:00:00:00:00:99")
        #expect(dynamic.contains("ip=192.168.1.1") == false && dynamic.contains("router=192.168.1.254"), "\(dynamic)")
        let dynamicIP = try #require(dynamic.firstMatch(of: /ip=192\.168\.1\.([0-9]+)/)?.1)
        #expect(Int(dynamicIP)! >= 100, "the dynamic range lies above the static block")
        let name = try s.sh("ip", "netns", "exec", client, "busybox", "nslookup", "guest01.default.kvmnet", "192.168.1.254")
        #expect(name.contains("192.168.1.1"), "\(name)")
        let leases = try s.kvmnet("leases").stdout
        #expect(leases.contains("02:00:00:00:00:99") && leases.contains("dynamic"), "\(leases)")
        #expect(try s.kvmnet("down", "--timeout", "0").status == 0)
        let left = try s.runner.run(["pgrep", "-f", s.stateDir + "/netns-"], stdin: nil)
        #expect(left.stdout.isEmpty, "dnsmasq or qemu survived down: \(left.stdout)")
        // Deleting a namespace tears its devices down later, in the background: delete the veth
        // pair here so the snapshot does not race with that.
        try s.sh("ip", "-n", s.host, "link", "del", "c1")
        try s.sh("ip", "netns", "del", client)
        let after = try s.snapshot()
        #expect(after == before, "\(lineDiff(before, after))")
    }

    /// DHCP replies carry a checksum the strictest client accepts: filled in by iptables'
    /// CHECKSUM target ("udp sum ok"), zero ("no checksum") on nftables, which cannot fill one in.
    @Test(needsRootAndBinary, .enabled(if: access("/usr/sbin/dnsmasq", X_OK) == 0 && access("/usr/bin/tcpdump", X_OK) == 0,
                                       "needs dnsmasq-base and tcpdump"),
          arguments: ["iptables", "nftables"])
    func dhcpRepliesChecksums(_ firewall: String) throws {
        let s = try Sandbox("csum" + firewall.prefix(1))
        let client = s.host + "-c"
        defer { _ = try? s.runner.run(["ip", "netns", "del", client], stdin: nil); s.destroy() }
        #expect(try s.kvmnet("up", "nat", "--firewall", firewall).status == 0)
        try s.sh("ip", "netns", "add", client)
        try s.sh("ip", "-n", s.host, "link", "add", "c1", "type", "veth", "peer", "name", "eth0", "netns", client)
        try s.sh("ip", "-n", s.host, "link", "set", "c1", "master", "br-in", "up")
        try s.sh("ip", "-n", client, "link", "set", "eth0", "up")
        var pid: pid_t = 0
        let capture = s.stateDir + "/dhcp.pcap.txt"
        let argv = ["sh", "-c", "exec ip netns exec \(s.host) timeout 10 tcpdump -i c1 -vv -n -c 1 'udp src port 67' > \(capture) 2>/dev/null"]
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        #expect(posix_spawnp(&pid, "sh", nil, nil, cArgs, environ) == 0)
        usleep(700_000)
        _ = try s.runner.run(["ip", "netns", "exec", client, "timeout", "8", "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-s", "/bin/true"], stdin: nil)
        var st: Int32 = 0
        waitpid(pid, &st, 0)
        let seen = (try? String(contentsOfFile: capture, encoding: .utf8)) ?? ""
        #expect(seen.contains(firewall == "iptables" ? "udp sum ok" : "no cksum"), "\(seen)")
        #expect(try s.kvmnet("down").status == 0)
    }

    /// Port clashes, as a table of cases: a resolver on 127.0.0.53 only is harmless; a DNS server
    /// on every address of port 53 stops `up` before anything changes, naming it and `--dns off`,
    /// which then works; a wildcard server started after `up` fails in turn.
    @Test(needsRootAndBinary, .enabled(if: access("/usr/sbin/dnsmasq", X_OK) == 0, "needs dnsmasq-base"))
    func portClashes() throws {
        let s = try Sandbox("clash")
        defer { s.destroy() }
        func server(_ extra: [String]) -> pid_t {
            var pid: pid_t = 0
            let argv = ["ip", "netns", "exec", s.host, "dnsmasq", "-k", "--port=53", "--no-resolv", "--conf-file=/dev/null",
                        "--pid-file=", "--user=nobody"] + extra
            let cArgs = argv.map { strdup($0) } + [nil]
            defer { cArgs.forEach { free($0) } }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
            _ = posix_spawnp(&pid, "ip", &actions, nil, cArgs, environ)
            usleep(400_000)
            return pid
        }
        func stop(_ pid: pid_t) { kill(pid, SIGKILL); var st: Int32 = 0; waitpid(pid, &st, 0) }
        func exited(_ pid: pid_t) -> Bool { var st: Int32 = 0; return waitpid(pid, &st, WNOHANG) == pid }
        _ = try s.inHost("ip", "addr", "add", "127.0.0.53/8", "dev", "lo")

        // 1. A resolver on 127.0.0.53 only: harmless.
        let resolver = server(["--listen-address=127.0.0.53", "--bind-interfaces"])
        let r1 = try s.kvmnet("up", "nat")
        #expect(r1.status == 0, "\(r1.stderr)")
        #expect(try s.kvmnet("down").status == 0)
        stop(resolver)

        // 2. A wildcard DNS server before `up`: refused, nothing changed; --dns off works.
        let wildcard = server([])
        let before = try s.snapshot()
        let r2 = try s.kvmnet("up", "nat")
        #expect(r2.status == 1 && r2.stderr.contains("port 53 on every address") && r2.stderr.contains("--dns off"), "\(r2.stderr)")
        #expect(r2.stderr.contains("dnsmasq (pid \(wildcard)) listens"), "the error names the program: \(r2.stderr)")
        #expect(try s.snapshot() == before)
        let r3 = try s.kvmnet("up", "nat", "--dns", "off")
        #expect(r3.status == 0, "\(r3.stderr)")
        #expect(try s.kvmnet("down").status == 0)
        stop(wildcard)

        // 3. A wildcard DNS server after `up`: it is the one that cannot start.
        #expect(try s.kvmnet("up", "nat").status == 0)
        let late = server([])
        #expect(exited(late), "a wildcard DNS server started beside the network's dnsmasq")
        if !exited(late) { stop(late) }
        #expect(try s.kvmnet("down").status == 0)
    }

    @Test(needsRootAndBinary) func notRootExits77BeforeTouchingAnything() throws {
        let r = try PosixCommandRunner().run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                              "--inh-caps=-all", Sandbox.binary, "--state-dir", "/nonexistent/x", "up", "nat"], stdin: nil)
        #expect(r.status == 77, "\(r.stderr)")
        let dry = try PosixCommandRunner().run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                                "--inh-caps=-all", Sandbox.binary, "--state-dir", "/nonexistent/x", "up", "nat", "--dry-run"], stdin: nil)
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("ip link add br-in"))
    }
}

func lineDiff(_ a: String, _ b: String) -> String {
    let x = a.split(separator: "\n"), y = b.split(separator: "\n")
    return (x.filter { !y.contains($0) }.map { "- \($0)" } + y.filter { !x.contains($0) }.map { "+ \($0)" }).joined(separator: "\n")
}

/// Starts the kvmnet binary with its output going to /dev/null (its errors are expected here).
func quietSpawn(_ pid: inout pid_t, _ argv: [UnsafeMutablePointer<CChar>?]) -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    return posix_spawn(&pid, Sandbox.binary, &actions, nil, argv, environ)
}
