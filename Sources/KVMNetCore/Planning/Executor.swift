import Foundation

/// Applies planned steps to the host, journaling each change before making it, and undoes
/// journaled changes in reverse.
///
/// Every step is an "ensure": it does nothing when the host already shows it, and treats
/// `HostError.exists` as success only after checking that the object is the one wanted.
public final class Executor {
    let env: HostEnvironment
    public private(set) var record: NetworkRecord
    var host: HostObservation
    /// The steps that changed something (the others found the host as wanted).
    public private(set) var performed: [HostStep] = []
    /// A failed `apply` could not undo everything: the record keeps what is left.
    public private(set) var rollbackLeftovers = false
    /// The firewall as `plan` read it, used once by the firewall step instead of reading again.
    public var firewallRead: FirewallFacts?
    /// Links the journal says kvmnet created (kept beside it: a thousand taps make a linear
    /// search per step quadratic).
    private var created: Set<String> = []

    public init(env: HostEnvironment, record: NetworkRecord, observation: HostObservation) {
        self.env = env; self.record = record; self.host = observation
        for case .createdLink(let n, _) in record.journal { created.insert(n) }
    }

    /// Applies `steps` in order. On any failure (or a pending SIGINT/SIGTERM) undoes what this
    /// call did, in reverse, and rethrows the original error naming the step.
    public func apply(_ steps: [HostStep], progress: (Int, HostStep) -> Void = { _, _ in }) throws {
        let start = record.journal.count
        // One record write before the first change: the record as the caller prepared it and
        // the link group its taps join. Every tap this call will make is journaled by one more
        // write right before the first one is made (one write, not one per tap; undoing an entry
        // whose tap was never made is harmless): the records written before it stay small.
        var taps = steps.compactMap { s -> JournalEntry? in
            guard case .createTap(let n, _) = s, !owns(n) else { return nil }
            return .createdLink(name: n, kind: "tun")
        }
        for case .attach(_, _, _, let group) in steps { record.tapGroup = group; break }
        try env.state.save(record)
        // The last step whose change was tried: the taps of the steps after it were never made.
        var tried = -1
        do {
            for (i, step) in steps.enumerated() {
                if let sig = env.pendingSignal() {
                    throw StepFailure(index: i, error: KVMNetError.interrupted(signal: sig, "interrupted by signal \(sig)"))
                }
                if !step.overlapsBackgroundWork { try settle() }
                if case .createTap = step, !taps.isEmpty {
                    record.journal += taps
                    do { try env.state.save(record) } catch {
                        record.journal.removeLast(taps.count)
                        throw StepFailure(index: i, error: error)
                    }
                    for case .createdLink(let n, _) in taps { created.insert(n) }
                    taps = []
                }
                progress(i, step)
                tried = i
                do {
                    if try apply(step) { performed.append(step) }
                } catch { throw StepFailure(index: i, error: error) }
                if let finish = startedInBackground { startedInBackground = nil; background.append((i, finish)) }
            }
            try settle()
        } catch let failure as StepFailure {
            // Nothing may still run while the changes are undone.
            while !background.isEmpty { _ = try? background.removeFirst().finish() }
            let i = failure.index, step = steps[i], error = failure.error
            // Taps journaled ahead whose step never ran were never made: forget them, so a
            // link of that name someone else makes meanwhile is never undone as ours.
            let notReached = Set(steps[(tried + 1)...].compactMap { s -> String? in
                if case .createTap(let n, _) = s { return n } else { return nil }
            })
            record.journal.removeAll { e in
                if case .createdLink(let n, "tun") = e, notReached.contains(n) { created.remove(n); return true }
                return false
            }
            let added = Array(record.journal[min(start, record.journal.count)...])
            let failures = undoReporting(added)
            let problems = failures.map(\.1)
            // What could not be undone stays recorded, so `down` can finish the job.
            record.journal.removeSubrange(min(start, record.journal.count)...)
            record.journal += added.filter { e in failures.contains { $0.0 == e } }
            rollbackLeftovers = !failures.isEmpty
            try? env.state.save(record)
            var message: String
            var interrupted: Int32? = nil
            // A child killed by the same Ctrl-C fails its step: report the signal.
            let signalled = env.pendingSignal()
            switch error {
            case _ where signalled != nil:
                interrupted = signalled
                message = "interrupted by signal \(signalled!) during step \(i + 1) (\(step.summary))"
            case KVMNetError.interrupted(let s, _):
                interrupted = s
                message = "interrupted by signal \(s) before step \(i + 1) (\(step.summary))"
            case let e as KVMNetError: message = "step \(i + 1) (\(step.summary)) failed: \(e.description)"
            case let e as HostError: message = "step \(i + 1) (\(step.summary)) failed: \(e.description)"
            default: message = "step \(i + 1) (\(step.summary)) failed: \(error)"
            }
            message += problems.isEmpty ? "; every change was undone"
                : "; undoing left problems: " + problems.joined(separator: "; ")
            if let s = interrupted { throw KVMNetError.interrupted(signal: s, message) }
            if case HostError.permission = error { throw KVMNetError.permission(message) }
            throw KVMNetError.failure(message)
        }
    }

    /// A step that failed, found when it ran or when its background work was waited for.
    struct StepFailure: Error {
        var index: Int
        var error: any Error
    }

    /// Work that steps started in other processes (the firewall transaction, dnsmasq's start)
    /// and that runs while the taps are made: waited for, in order, by `settle`.
    private var background: [(index: Int, finish: () throws -> Void)] = []
    /// Set by `apply(_:)` for a step whose work goes on in the background.
    private var startedInBackground: (() throws -> Void)?

    /// Waits for the background work of earlier steps; a failure names its step.
    func settle() throws {
        while !background.isEmpty {
            let b = background.removeFirst()
            do { try b.finish() } catch { throw StepFailure(index: b.index, error: error) }
        }
    }

    /// Deletes the network's taps, and its bridge when it joined their group, with one group
    /// request (each device deleted on its own waits for the kernel's RCU barrier, ~17 ms).
    /// Membership is re-checked first: a link in the group that is neither one of this network's
    /// taps nor the bridge it created, or a tap a live process holds, is moved out of it.
    /// - Parameter bridge: the bridge to delete with them: only one whose creation is among the
    ///   entries undone (a rollback of a second `up` never takes the bridge an earlier one made).
    func deleteTapGroup(taps: Set<String>, held: Set<String>, bridge: String?) {
        guard let group = record.tapGroup, group != 0, !taps.isEmpty, let all = try? env.links.links() else { return }
        let members = all.filter { $0.group == group }
        guard !members.isEmpty else { return }
        func ours(_ l: LinkInfo) -> Bool {
            l.name == bridge ? l.isBridge : taps.contains(l.name) && l.isTap && !held.contains(l.name)
        }
        do {
            for m in members where !ours(m) {
                try env.links.setLink(m.name, LinkChange(group: 0))
            }
            try env.links.deleteLinks(group: group)
        } catch {
            env.log("notice: deleting the taps as one group failed (\(error)); deleting them one by one")
        }
    }

    /// Adds `entry` to the record and saves it, before the change it describes is made.
    func journal(_ entry: JournalEntry) throws {
        if case .createdLink(let n, _) = entry, created.contains(n) { return }
        if record.journal.contains(entry) { return }
        if case .createdLink(let n, _) = entry { created.insert(n) }
        record.journal.append(entry)
        try env.state.save(record)
    }

    /// Applies one step; returns false when the host already showed it (nothing changed).
    @discardableResult
    func apply(_ step: HostStep) throws -> Bool {
        let links = env.links
        switch step {
        case .createBridge(let name, let mac, let mtu, let group):
            if let l = host.link(name), l.isBridge, owns(name) { return false }
            try journal(.createdLink(name: name, kind: "bridge"))
            do { try links.createBridge(name: name, mac: mac, mtu: mtu, group: group) } catch HostError.exists(let m) {
                // Someone made a link of that name since the check: it is not ours to undo.
                record.journal.removeAll { $0 == .createdLink(name: name, kind: "bridge") }
                created.remove(name)
                try env.state.save(record)
                throw HostError.exists(m)
            }
            host.links.append(LinkInfo(index: -1, name: name, kind: "bridge", mtu: mtu, mac: mac))

        case .createTap(let name, let owner):
            if let l = host.link(name), l.isTap, l.index != -1, owns(name) { return false }
            try journal(.createdLink(name: name, kind: "tun"))
            do { try links.createTap(name: name, owner: owner) } catch HostError.exists(let m) {
                // Not ours after all: someone made it since the check. Never undo their link.
                record.journal.removeAll { $0 == .createdLink(name: name, kind: "tun") }
                created.remove(name)
                try env.state.save(record)
                throw HostError.exists(m)
            }
            host.links.append(LinkInfo(index: -1, name: name, kind: "tun", mtu: 1500))

        case .attach(let port, let bridge, let mtu, let group):
            if let l = host.link(port), l.index != -1, host.master(of: port) == bridge, l.mtu == mtu, l.isUp, l.group == group {
                return false
            }
            if record.tapGroup != group { record.tapGroup = group; try env.state.save(record) }
            try links.setLink(port, LinkChange(mtu: mtu, master: .some(bridge), group: group, up: true))

        case .setDeviceSysctl(let key, let value):
            if (try? env.sysctl.read(key)) == value { return false }
            try env.sysctl.write(key, value)

        case .setSysctl(let key, let value):
            let current = try env.sysctl.read(key)
            if current == value { return false }
            let previous = record.journal.compactMap { e -> String? in
                if case .changedSysctl(key, let p, _) = e { return p } else { return nil }
            }.first ?? current
            try journal(.changedSysctl(key: key, previous: previous, value: value))
            try env.sysctl.write(key, value)

        case .addAddress(let a):
            if host.addresses.contains(where: { sameAddress($0, a) }) { return false }
            try journal(.addedAddress(a))
            do { try links.addAddress(a) } catch HostError.exists {
                guard try links.addresses().contains(where: { sameAddress($0, a) }) else { throw HostError.exists("add address \(a): exists elsewhere") }
            }

        case .setUp(let name):
            if host.link(name)?.isUp == true { return false }
            try links.setUp(name: name, true)

        case .setMTU(let name, let mtu):
            if host.link(name)?.mtu == mtu { return false }
            try links.setMTU(name: name, mtu)

        case .enslave(let port, let bridge, let recorded):
            if host.master(of: port) == bridge { return false }
            if recorded { try journal(.enslaved(port: port, bridge: bridge)) }
            try links.setMaster(name: port, bridge: bridge)

        case .removeRoute(let r):
            if !host.routes.contains(where: { sameRoute($0, r) }) { return false }
            try journal(.removedRoute(r))
            do { try links.deleteRoute(r) } catch HostError.notFound {}

        case .removeAddress(let a):
            if !host.addresses.contains(where: { sameAddress($0, a) }) { return false }
            try journal(.removedAddress(a))
            do { try links.deleteAddress(a) } catch HostError.notFound {}

        case .addRoute(let r):
            if host.routes.contains(where: { sameRoute($0, r) }) { return false }
            try journal(.addedRoute(r))
            try ensureRoute(r)

        case .installFirewall(let plan):
            let index = record.journal.firstIndex { if case .firewall = $0 { return true } else { return false } }
            var previous: FirewallRecord? = nil
            if let i = index, case .firewall(let f) = record.journal[i] { previous = f }
            let change = try Firewall(env.commands).prepare(plan, previous: previous, read: firewallRead)
            firewallRead = nil
            if !change.needed { return false }
            if let i = index {
                // Repair or new forwards: the record grows (a DOCKER-USER chain may have appeared).
                record.journal[i] = .firewall(change.record)
                try env.state.save(record)
            } else {
                try journal(.firewall(change.record))
            }
            startedInBackground = try change.start()

        case .startDnsmasq(let d):
            guard let g = env.guests else { throw KVMNetError.failure("cannot start dnsmasq here") }
            let index = record.journal.firstIndex { if case .startedDaemon = $0 { return true } else { return false } }
            if let i = index, case .startedDaemon(let old) = record.journal[i] {
                if daemonRuns(old), g.readText(d.confPath) == d.conf { return false }
                // The config changed (new guests, new options): stop the old one first.
                stopDaemon(old)
            }
            let entry = JournalEntry.startedDaemon(DaemonRecord(name: "dnsmasq", conf: d.confPath, pidfile: d.pidfile))
            if let i = index { record.journal[i] = entry; try env.state.save(record) } else { try journal(entry) }
            try g.writeFile(d.confPath, d.conf)
            let start = try g.startInBackground(d.argv, pidfile: d.pidfile)
            startedInBackground = { [self] in
                let started: (pid: Int32, startTime: UInt64)
                do { started = try start() } catch let e as KVMNetError {
                    throw KVMNetError.failure(e.description
                        + (e.description.contains("exited with status 2:") ? " (dnsmasq's status 2: an address or port it needs is in use; see `kvmnet doctor`, and --dns off avoids port 53)" : ""))
                }
                // Saved by the next write of the record (until then `down` finds the pid in the
                // pidfile): one write fewer of a record that holds every tap.
                let i = record.journal.firstIndex(of: entry)!
                record.journal[i] = .startedDaemon(DaemonRecord(name: "dnsmasq", conf: d.confPath, pidfile: d.pidfile,
                                                                pid: started.pid, startTime: started.startTime))
                try checkServes(d, g)
            }
        }
        return true
    }

    func daemonPid(_ d: DaemonRecord) -> (Int32, UInt64)? { env.daemonPid(d) }
    func daemonRuns(_ d: DaemonRecord) -> Bool { daemonPid(d) != nil }

    /// dnsmasq reads some files only after dropping root (a hosts directory, addn-hosts): a
    /// static entry it cannot read is silently not served. Ask it for the first guest's name
    /// and fail loudly when it does not answer with the guest's address.
    func checkServes(_ d: DnsmasqPlan, _ g: any GuestControl) throws {
        guard let (name, address, server) = d.firstStaticName else { return }
        guard env.commands.which("busybox") != nil else {
            env.log("notice: busybox is not installed (apt-get install busybox-static): not checking that dnsmasq serves \(name)")
            return
        }
        // The host asks its own address: with lo down (as `plan` saw it) no answer could come back.
        if host.link("lo")?.isUp == false {
            env.log("notice: lo is down here: not checking that dnsmasq serves \(name) (the host cannot reach its own \(server))")
            return
        }
        // A query nobody answers waits 5 s in nslookup: each try gets 1 s, all of them 3 s.
        let limit = env.commands.which("timeout") != nil ? ["timeout", "1"] : []
        let t0 = g.now()
        repeat {
            if let r = try? env.commands.run(limit + ["busybox", "nslookup", name, server], stdin: nil),
               r.status == 0, r.stdout.contains(address) { return }
            g.sleep(seconds: 0.05)
        } while g.now() - t0 < 3
        throw KVMNetError.failure("dnsmasq runs but does not serve its static entries (\(name) should be \(address)); "
            + "its user may not be able to read \(d.confPath)")
    }

    func stopDaemon(_ d: DaemonRecord) {
        signalDaemon(d).map(awaitExit)
    }

    /// Sends SIGTERM to the daemon when it is the one kvmnet started; returns what `awaitExit`
    /// needs (nil when it is not running).
    func signalDaemon(_ d: DaemonRecord) -> (pid: Int32, startTime: UInt64)? {
        guard let g = env.guests, let (pid, st) = daemonPid(d) else { return nil }
        g.kill(pid: pid, startTime: st, signal: SIGTERM)
        return (pid, st)
    }

    /// Waits up to 3 s for a signalled daemon to exit, then sends SIGKILL. dnsmasq exits at
    /// once but the kernel takes ~15 ms to release its sockets: look again soon, then less often.
    func awaitExit(_ p: (pid: Int32, startTime: UInt64)) {
        guard let g = env.guests else { return }
        let t0 = g.now()
        var pause = 0.001
        while g.startTime(of: p.pid) == p.startTime && g.now() - t0 < 3 { g.sleep(seconds: pause); pause = min(pause * 2, 0.05) }
        if g.startTime(of: p.pid) == p.startTime { g.kill(pid: p.pid, startTime: p.startTime, signal: SIGKILL) }
    }

    func owns(_ link: String) -> Bool { created.contains(link) }

    func ensureRoute(_ r: RouteInfo) throws {
        do { try env.links.addRoute(r) } catch HostError.exists(let m) {
            guard try env.links.routes().contains(where: { sameRoute($0, r) }) else {
                throw HostError.exists("\(m); another route to \(r.destination) with metric \(r.metric) is in the way")
            }
        }
    }

    /// Undoes `entries` in reverse; returns the entries that could not be undone (and stay
    /// recorded) with the reason.
    public func undoReporting(_ entries: [JournalEntry]) -> [(JournalEntry, String)] {
        var problems: [(JournalEntry, String)] = []
        let links = env.links
        let taps = Set(entries.compactMap { e -> String? in if case .createdLink(let n, "tun") = e { return n } else { return nil } })
        // A tap a live process still holds (a guest on a pre-made tap) is never deleted.
        let holders = env.probe.tapHolders(taps)
        // Daemons are told to stop first and awaited last: their exit overlaps the other work.
        // So does the firewall's removal (a transaction in another process): the taps went
        // first, as a group, so nothing reaches the bridge while its rules go.
        var stopping: [(pid: Int32, startTime: UInt64)] = []
        var removingFirewall: [(JournalEntry, () throws -> Void)] = []
        for case .startedDaemon(let d) in entries { if let p = signalDaemon(d) { stopping.append(p) } }
        // A bridged network's bridge carries the uplink's addresses: it goes last, on its own.
        let bridge = record.spec.bridge.rawValue
        let groupedBridge = record.spec.model != .bridged && entries.contains(.createdLink(name: bridge, kind: "bridge")) ? bridge : nil
        deleteTapGroup(taps: taps, held: Set(holders.keys), bridge: groupedBridge)
        // The taps left after the group delete, in one dump (not one request per recorded tap).
        let tapsLeft = taps.isEmpty ? [:] : (try? links.links()).map { Dictionary($0.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a }) }
        for entry in entries.reversed() {
            do {
                switch entry {
                case .createdLink(let name, let kind):
                    let found = kind == "tun" && tapsLeft != nil ? tapsLeft?[name] : try links.link(named: name)
                    guard let l = found else { break }
                    if l.kind != kind {
                        env.log("\(name) is now a \(l.kind ?? "network") interface, not the \(kind) kvmnet created: left alone")
                        break
                    }
                    if kind == "tun", let held = holders[name], !held.isEmpty {
                        problems.append((entry, "tap \(name) is held by " + held.map { "pid \($0.pid) (\($0.command))" }.joined(separator: ", ")
                                         + "; left in place: run `kvmnet down` again once that process has exited"))
                        break
                    }
                    do { try links.deleteLink(name: name) } catch HostError.notFound {}
                case .changedSysctl(let key, let previous, let value):
                    let current = try env.sysctl.read(key)
                    if current == value {
                        try env.sysctl.write(key, previous)
                    } else if current != previous {
                        env.log("notice: \(key) is \(current) now (kvmnet set \(value)); someone changed it since, so it is left as it is")
                    }
                case .addedAddress(let a):
                    do { try links.deleteAddress(a) } catch HostError.notFound {}
                case .addedRoute(let r):
                    do { try links.deleteRoute(r) } catch HostError.notFound {}
                case .removedAddress(let a):
                    // An uplink that no longer exists cannot get its address back: nothing to restore.
                    guard try links.link(named: a.interface) != nil else {
                        env.log("\(a.interface) no longer exists: its address \(a.address)/\(a.prefixLength) cannot be put back")
                        break
                    }
                    do { try links.addAddress(a) } catch HostError.exists {}
                case .removedRoute(let r):
                    guard try links.link(named: r.interface) != nil else { break }
                    try ensureRoute(r)
                case .enslaved(let port, let bridge):
                    guard let l = try links.link(named: port), l.masterIndex != 0 else { break }
                    if let m = try links.links().first(where: { $0.index == l.masterIndex }), m.name == bridge {
                        try links.setMaster(name: port, bridge: nil)
                    }
                case .firewall(let rec):
                    removingFirewall.append((entry, try Firewall(env.commands).startRemoval(rec)))
                case .startedDaemon:
                    break   // signalled above, awaited below
                }
            } catch {
                problems.append((entry, "undo \(entry.summary): \(error)"))
            }
        }
        for (entry, finish) in removingFirewall {
            do { try finish() } catch { problems.append((entry, "undo \(entry.summary): \(error)")) }
        }
        stopping.forEach(awaitExit)
        return problems
    }
}

func sameAddress(_ a: InterfaceAddress, _ b: InterfaceAddress) -> Bool {
    a.interface == b.interface && a.family == b.family && a.prefixLength == b.prefixLength
        && a.address.lowercased() == b.address.lowercased()
}

func sameRoute(_ a: RouteInfo, _ b: RouteInfo) -> Bool {
    a.family == b.family && a.table == b.table && a.destination == b.destination && a.interface == b.interface
        && a.metric == b.metric && a.gateway == b.gateway
}

extension JournalEntry {
    public var summary: String {
        switch self {
        case .createdLink(let n, let k): return "created \(k == "tun" ? "tap" : k) \(n)"
        case .changedSysctl(let k, let p, let v): return "set \(k)=\(v) (was \(p))"
        case .addedAddress(let a): return "added address \(a)"
        case .addedRoute(let r): return "added route \(r)"
        case .removedAddress(let a): return "moved address \(a)"
        case .removedRoute(let r): return "moved route \(r)"
        case .enslaved(let p, let b): return "attached \(p) to \(b)"
        case .firewall(let f): return "firewall chains \(f.chains.joined(separator: ", "))"
        case .startedDaemon(let d): return "started \(d.name)"
        }
    }
}

extension HostEnvironment {
    /// The daemon's pid when the process that runs now is the one kvmnet started: same pid,
    /// same start time, a command line naming its config file. Never a reused pid.
    public func daemonPid(_ d: DaemonRecord) -> (Int32, UInt64)? {
        guard let g = guests else { return nil }
        let pid = d.pid ?? Int32(g.readText(d.pidfile).trimmingCharacters(in: .whitespacesAndNewlines))
        guard let pid, let st = g.startTime(of: pid) else { return nil }
        if let recorded = d.startTime, recorded != st { return nil }
        // Exactly the command line kvmnet started, not just one that mentions the file.
        guard g.readText("/proc/\(pid)/cmdline").split(separator: "\0").contains(Substring("--conf-file=\(d.conf)")) else { return nil }
        return (pid, st)
    }
}
