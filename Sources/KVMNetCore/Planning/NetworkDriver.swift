import Foundation

/// What `up` did or would do.
public struct UpOutcome: Sendable {
    public enum Action: String, Codable, Sendable { case created, repaired, unchanged, planned }
    public var action: Action
    public var spec: NetworkSpec
    public var steps: [HostStep]
    /// Journal entries this call added.
    public var changes: [JournalEntry]
    /// The steps that changed something.
    public var performed: [HostStep] = []
    public var findings: [Finding] = []
    public var firewallReason: String = ""
    /// The record as this call left it (nil for a dry run).
    public var record: NetworkRecord? = nil
}

/// What `down` did or would do.
public struct DownOutcome: Sendable {
    public var network: NetworkName
    public var wasUp: Bool
    /// The changes undone (or, with --dry-run, to undo), in the order they are undone.
    public var undone: [JournalEntry]
    /// Sysctls left as they are because another kvmnet network still needs them.
    public var handedOver: [String]
    /// Guests stopped (or, with --dry-run, to stop).
    public var guests: [String]
    /// Disks `--keep-disks` moved out of the state folder.
    public var keptDisks: [String] = []
}

/// The operations behind `up`, `down` and `status`, against an injected host.
///
/// Every operation that changes the host holds the state folder's lock for its whole run.
public final class NetworkDriver {
    public let env: HostEnvironment

    public init(env: HostEnvironment) { self.env = env }

    func observe() throws -> HostObservation {
        let d = try env.links.dump()
        return HostObservation(links: d.links, addresses: d.addresses, routes: d.routes)
    }

    /// Refuses a record made in another network namespace.
    func checkNamespace(_ record: NetworkRecord) throws(KVMNetError) {
        if record.namespace.inode != env.namespace.inode {
            throw .failure("network \(record.name) was brought up in \(record.namespace), but this is \(env.namespace); "
                + "run the command in that namespace (--netns), or remove \(env.state.folder(for: record.name)) if it no longer exists")
        }
    }

    /// Everything `up` will do, decided before anything changes.
    public struct UpPlan: Sendable {
        public var spec: NetworkSpec
        public var steps: [HostStep]
        public var record: NetworkRecord?
        public var host: HostObservation
        /// What the host's firewall means for this network (errors stop `up`).
        public var findings: [Finding]
        /// Every forward of the network: recorded ones and new ones.
        public var forwards: [PortForward]
        /// Forwards this call adds (their old conntrack entries are flushed).
        public var newForwards: [PortForward]
        public var firewallReason: String
        /// The host's firewall as read for this plan.
        public var facts: FirewallFacts
    }

    /// Resolves, checks and plans `up` without changing anything.
    /// - Parameters:
    ///   - guests: the guests `up` will launch: checked now, and their taps must not exist.
    ///   - enforce: fail on findings that mean the network would not pass traffic.
    public func plan(_ request: UpRequest, guests: GuestRequest? = nil, enforce: Bool = true) throws -> UpPlan {
        let record = try env.state.load(request.name)
        if let r = record { try checkNamespace(r) }
        let host = try observe()
        var facts = try Doctor.facts(env, full: false)
        let spec: NetworkSpec
        var reason = record?.firewallReason ?? ""
        if let r = record {
            let diff = SpecResolver.conflicts(request, with: r.spec)
            if !diff.isEmpty {
                throw KVMNetError.failure("network \(request.name) is already up as \(r.spec.model) with other options: "
                    + diff.joined(separator: ", ") + "; run `kvmnet down --name \(request.name)` first")
            }
            spec = r.spec
        } else {
            let servesHost = (request.model.hasHostAddress && (request.dhcp != false || request.dns != false))
                || (request.model == .isolated && (request.dhcp == true || request.dns == true))
            let (backend, why) = try Doctor.chooseBackend(request.firewall ?? .auto, facts, servesHost: servesHost)
            reason = why
            spec = try SpecResolver.resolve(request, links: host.links, routes: host.routes, namespace: env.namespace, backend: backend)
        }
        // Listeners on 53/67 matter only to a network that runs a DHCP/DNS server (one process).
        if spec.runsDnsmasq, record == nil { facts.dnsDhcpListeners = Doctor.dnsDhcpListeners(env) }
        var findings = Doctor.findings(for: spec, facts)
        let errors = findings.filter { $0.severity == .error }
        if enforce, !errors.isEmpty {
            throw KVMNetError.failure("network \(spec.name) would not pass traffic on this host:\n"
                + errors.map { "  - \($0.message)\n    \($0.action)" }.joined(separator: "\n"))
        }
        let others = try env.state.all().filter { $0.name != spec.name }
        let planned = try guests.map { try guestSpecs($0, spec: spec, record: record, host: host) } ?? []
        // Boot files given on the command line are looked at before anything changes.
        if let boot = guests?.boot, let g = env.guests {
            let files: [(String, String)]
            switch boot {
            case .kernel(let k, let i): files = [("--kernel", k), ("--initrd", i)]
            case .image(let d): files = [("--image", d)]
            }
            for (option, path) in files where !g.isReadable(path) {
                throw KVMNetError.failure("\(option) \(path): no such file, or it cannot be read")
            }
        }
        // Forwards name guests of this call or of the record.
        let known = planned + (record?.guests ?? []).map(\.spec).filter { g in !planned.contains { $0.name == g.name } }
        var forwards = record?.forwards ?? []
        var added: [PortForward] = []
        for r in request.forwards {
            let f = try PortForward.resolve(r, spec: spec, guests: known)
            if let old = forwards.first(where: { $0.proto == f.proto && $0.hostPort == f.hostPort }) {
                if old.address != f.address || old.port != f.port {
                    throw KVMNetError.failure("host port \(f.proto)/\(f.hostPort) is already forwarded to \(old.guest):\(old.port); "
                        + "remove it first (kvmnet forward del --name \(spec.name) \(old))")
                }
                continue
            }
            forwards.append(f)
            added.append(f)
        }
        if host.link("lo")?.isUp == false, spec.runsDnsmasq || !forwards.isEmpty {
            findings.append(Finding(severity: .warning, check: "loopback-down",
                message: "lo is down in this network namespace: programs on this host cannot reach its own addresses "
                    + "(the bridge's DNS server, ports forwarded to guests); the guests are not affected",
                action: "ip link set lo up (kvmnet leaves lo as it finds it)"))
        }
        try Planner.check(spec, on: host, record: record, others: others, isWireless: env.probe.isWireless,
                          force: request.force, guestTaps: planned.map(\.tap))
        var dnsmasq: DnsmasqPlan? = nil
        if spec.runsDnsmasq, env.guests != nil {
            dnsmasq = DnsmasqPlan(spec: spec, guests: known, folder: env.state.folder(for: spec.name),
                                  user: env.userID("dnsmasq") != nil ? "dnsmasq" : "nobody")
        }
        return UpPlan(spec: spec, steps: Planner.plan(spec, on: host, record: record, forwards: forwards, dnsmasq: dnsmasq,
                                                              reservedGroups: Set(others.compactMap(\.tapGroup))), record: record,
                      host: host, findings: findings, forwards: forwards, newForwards: added, firewallReason: reason, facts: facts)
    }

    /// Brings the network up, or repairs it when it is up already.
    /// On failure the host is as before this call and the error names the failed step.
    public func up(_ request: UpRequest, guests: GuestRequest? = nil, dryRun: Bool = false, lazy: Bool = false,
                   progress: (Int, Int, HostStep) -> Void = { _, _, _ in }) throws -> UpOutcome {
        if dryRun {
            let p = try plan(request, guests: guests, enforce: false)
            return UpOutcome(action: .planned, spec: p.spec, steps: p.steps, changes: [], findings: p.findings,
                             firewallReason: p.firewallReason)
        }
        return try env.state.withLock {
            let p = try plan(request, guests: guests)
            let existing = p.record, spec = p.spec, steps = p.steps
            var record = existing ?? NetworkRecord(spec: spec, namespace: env.namespace)
            record.complete = false
            record.lazy = lazy && (existing == nil || existing?.lazy == true) ? true : nil
            record.forwards = p.forwards.isEmpty ? nil : p.forwards
            record.firewallReason = p.firewallReason
            pruneDeadHookTaps(&record)
            // The executor writes the record before its first change.
            let executor = Executor(env: env, record: record, observation: p.host)
            executor.firewallRead = p.facts
            let before = record.journal.count
            do {
                try executor.apply(steps) { i, step in progress(i, steps.count, step) }
            } catch {
                if let old = existing { var r = executor.record; r.complete = old.complete; r.forwards = old.forwards; try? env.state.save(r) }
                else if !executor.rollbackLeftovers { try? env.state.remove(spec.name) }
                throw error
            }
            record = executor.record
            record.complete = true
            try env.state.save(record)
            try writeHooks(spec.name)
            flushConntrack(p.newForwards, hostAddresses: p.host.addresses.compactMap { $0.ipv4?.address })
            let changes = Array(record.journal[before...])
            let action: UpOutcome.Action = existing == nil ? .created : (executor.performed.isEmpty ? .unchanged : .repaired)
            return UpOutcome(action: action, spec: spec, steps: steps, changes: changes, performed: executor.performed,
                             findings: p.findings, firewallReason: p.firewallReason, record: record)
        }
    }

    /// A flow that started before a forward existed keeps its old translation: delete the
    /// conntrack entries of the forwarded ports to the host's own addresses (flows of other
    /// hosts' services on that port are left alone).
    /// Equals `conntrack -D -p PROTO --orig-port-dst PORT --orig-dst ADDRESS`, per address.
    func flushConntrack(_ forwards: [PortForward], hostAddresses: [IPv4Address]) {
        guard !forwards.isEmpty, !hostAddresses.isEmpty else { return }
        guard env.commands.which("conntrack") != nil else {
            env.log("notice: conntrack is not installed (apt-get install conntrack): flows already under way to a forwarded port keep their old translation")
            return
        }
        for f in forwards {
            for a in hostAddresses {
                // Exit 1 means "no entry matched": fine.
                _ = try? env.commands.run(["conntrack", "-D", "-p", f.proto.rawValue, "--orig-port-dst", "\(f.hostPort)",
                                           "--orig-dst", a.description], stdin: nil)
            }
        }
    }

    /// Removes exactly what `up` created and restores what it changed.
    /// A network that is not up is not an error (`wasUp` false).
    /// - Parameter keepDisks: move the guests' qcow2 overlays and seeds out of the state folder
    ///   (to `kept-disks/NET-TIME/` beside it) instead of deleting them with it.
    public func down(_ name: NetworkName, dryRun: Bool = false, guestTimeout: Double = 5, keepDisks: Bool = false) throws -> DownOutcome {
        let notUp = DownOutcome(network: name, wasUp: false, undone: [], handedOver: [], guests: [])
        // Nothing recorded: nothing to lock (and no folder to create for the lock).
        guard let first = try env.state.load(name) else { return notUp }
        try checkNamespace(first)
        // 1. Guests first, outside the lock: their qemu runs the ifdown hook, which takes it.
        //    No qemu process of the network survives `down`.
        let guests = first.guests ?? []
        if !dryRun, !guests.isEmpty {
            let survivors = stopGuests(guests, network: name, timeout: guestTimeout)
            if !survivors.isEmpty {
                throw KVMNetError.failure("could not stop \(survivors.joined(separator: ", ")); the network is left up")
            }
        }
        return try env.state.withLock {
            guard var record = try env.state.load(name) else { return notUp }
            // Guests an `up --guests` recorded while they were being stopped: stop them too.
            if !dryRun, let late = record.guests, !late.isEmpty {
                let survivors = stopGuests(late, network: name, timeout: 0)
                if !survivors.isEmpty {
                    throw KVMNetError.failure("could not stop \(survivors.joined(separator: ", ")); the network is left up")
                }
            }
            var keep: Set<String> = []
            var others = try env.state.all().filter { $0.name != name }
            for entry in record.journal {
                guard case .changedSysctl(let key, _, _) = entry, key == "net.ipv4.ip_forward" else { continue }
                // Another kvmnet network still routes: it takes over the duty of restoring the value.
                if let i = others.firstIndex(where: { $0.spec.model.needsForwarding }) {
                    keep.insert(key)
                    if !dryRun {
                        others[i].journal.insert(entry, at: 0)
                        try env.state.save(others[i])
                    }
                }
            }
            let undone = record.journal.reversed().filter {
                if case .changedSysctl(let k, _, _) = $0 { return !keep.contains(k) } else { return true }
            }
            if dryRun {
                return DownOutcome(network: name, wasUp: true, undone: Array(undone), handedOver: keep.sorted(),
                                   guests: (record.guests ?? []).map(\.spec.name))
            }
            // 2. Then the network, in reverse.
            record.guests = nil
            record.journal.removeAll { if case .changedSysctl(let k, _, _) = $0 { return keep.contains(k) } else { return false } }
            try env.state.save(record)
            let executor = Executor(env: env, record: record, observation: HostObservation(links: [], addresses: [], routes: []))
            let problems = executor.undoReporting(record.journal)
            if !problems.isEmpty {
                // Keep exactly what is still there, so a later `down` finishes the job.
                record.journal = record.journal.filter { e in problems.contains { $0.0 == e } }
                try env.state.save(record)
                throw KVMNetError.failure("down of \(name) is incomplete (its record keeps what is left): "
                    + problems.map(\.1).joined(separator: "; "))
            }
            var kept: [String] = []
            if keepDisks, let g = env.guests {
                let paths = GuestPaths(folder: env.state.folder(for: name))
                let target = (paths.folder as NSString).deletingLastPathComponent + "/kept-disks/\(name)-\(Int(Date().timeIntervalSince1970))"
                for gr in guests {
                    for f in [paths.overlay(gr.spec.name), paths.seed(gr.spec.name)] {
                        let to = target + "/" + (f as NSString).lastPathComponent
                        if try g.moveFile(f, to: to) { kept.append(to) }
                    }
                }
            }
            try env.state.remove(name)
            return DownOutcome(network: name, wasUp: true, undone: Array(undone), handedOver: keep.sorted(),
                               guests: guests.map(\.spec.name), keptDisks: kept)
        }
    }

    /// The state of each recorded network and how the kernel differs from its record.
    public func status(_ name: NetworkName? = nil) throws -> [NetworkStatus] {
        // Reaping changes the host: only when the question is about every network.
        if env.canAdministerNetwork, name == nil { try reapLazyNetworks() }
        let records = try name.map { n in try env.state.load(n).map { [$0] } ?? [] } ?? env.state.all()
        return try status(of: records)
    }

    /// The state of `records`.
    /// - Parameter firewallApplied: their firewall was installed or found in place by this
    ///   process a moment ago (`up`): not read again.
    public func status(of records: [NetworkRecord], firewallApplied: Bool = false) throws -> [NetworkStatus] {
        if records.isEmpty { return [] }
        let host = try observe()
        let firewall = Firewall(env.commands)
        let reads = FirewallReads(env.commands)
        let running: (GuestRecord) -> Bool = { [env] g in
            guard let pid = g.pid, let st = g.startTime, let control = env.guests else { return false }
            return control.startTime(of: pid) == st
        }
        return try records.map { r in
            var drift: [String] = []
            if !firewallApplied {
                for case .firewall(let fw) in r.journal {
                    drift += try firewall.drift(FirewallPlan(spec: r.spec, forwards: r.forwards ?? []), record: fw, read: reads)
                }
            }
            return NetworkStatus(record: r, host: host, firewallDrift: drift, sysctl: env.sysctl, namespace: env.namespace,
                                 running: running, daemonRunning: { [env] in env.daemonPid($0) != nil })
        }
    }
}

/// One network as `status` reports it.
public struct NetworkStatus: Sendable {
    public var record: NetworkRecord
    public var addresses: [InterfaceAddress]
    public var ports: [String]
    public var drift: [String]
    public var forwarding: String?
    /// Guests with whether their process still runs.
    public var guests: [(GuestRecord, Bool)]
    /// Taps hooks attached, with whether they still exist.
    public var hookTaps: [(String, Bool)]

    init(record: NetworkRecord, host: HostObservation, firewallDrift: [String], sysctl: any SysctlStore,
         namespace: NamespaceIdentity, running: (GuestRecord) -> Bool, daemonRunning: (DaemonRecord) -> Bool = { _ in true }) {
        self.record = record
        guests = (record.guests ?? []).map { ($0, running($0)) }
        hookTaps = (record.hookTaps ?? []).map { t in (t, host.link(t) != nil) }
        let spec = record.spec
        let br = spec.bridge.rawValue
        addresses = host.addresses.filter { $0.interface == br }
        let bridge = host.link(br)
        ports = bridge.map { b in host.links.filter { $0.masterIndex == b.index }.map(\.name).sorted() } ?? []
        forwarding = try? sysctl.read("net.ipv4.ip_forward")
        var drift: [String] = []
        if record.namespace.inode != namespace.inode { drift.append("the record belongs to \(record.namespace)") }
        if !record.complete { drift.append("`up` did not finish (interrupted or killed): run `kvmnet up` again or `kvmnet down`") }
        for entry in record.journal {
            switch entry {
            case .createdLink(let name, let kind):
                guard let l = host.link(name) else { drift.append("\(kind == "tun" ? "tap" : kind) \(name) is missing"); continue }
                if l.kind != kind { drift.append("\(name) is a \(l.kind ?? "network") interface, not a \(kind)") }
                if kind == "tun", host.master(of: name) != br { drift.append("tap \(name) is not attached to \(br)") }
                if !l.isUp { drift.append("\(name) is down") }
            case .addedAddress(let a):
                if !host.addresses.contains(where: { sameAddress($0, a) }) { drift.append("address \(a) is missing") }
            case .addedRoute(let r):
                if !host.routes.contains(where: { sameRoute($0, r) }) { drift.append("route \(r) is missing") }
            case .enslaved(let port, let b):
                if host.master(of: port) != b { drift.append("\(port) is no longer a port of \(b)") }
            case .changedSysctl(let key, _, let value):
                if let v = try? sysctl.read(key), v != value { drift.append("\(key) is \(v), kvmnet set \(value): someone changed it") }
            case .firewall:
                drift += firewallDrift
            case .startedDaemon(let d):
                if !daemonRunning(d) { drift.append("\(d.name) is not running: guests get no DHCP/DNS (`kvmnet up` starts it again)") }
            case .removedAddress, .removedRoute:
                break
            }
        }
        if spec.model != .bridged, host.link(br) != nil,
           let v6 = try? sysctl.read("net/ipv6/conf/\(br)/disable_ipv6"), v6 != "1" {
            drift.append("IPv6 is on on \(br) (disable_ipv6=\(v6)): guests can reach the host over a link-local address")
        }
        if spec.model.needsForwarding, forwarding != "1",
           !record.journal.contains(where: { if case .changedSysctl = $0 { return true } else { return false } }) {
            drift.append("net.ipv4.ip_forward is \(forwarding ?? "unknown"): the \(spec.model) model needs 1")
        }
        for (g, alive) in guests where !alive { drift.append("guest \(g.spec.name) is not running") }
        self.drift = drift
    }
}
