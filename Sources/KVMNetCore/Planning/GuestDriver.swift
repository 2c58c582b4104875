import Foundation

extension NetworkDriver {
    func guestControl() throws(KVMNetError) -> any GuestControl {
        guard let g = env.guests else { throw .failure("guests cannot run on this host") }
        return g
    }

    /// Writes the network's `qemu-ifup` and `qemu-ifdown` hooks into its state folder.
    public func writeHooks(_ network: NetworkName) throws {
        guard let g = env.guests else { return }
        let paths = GuestPaths(folder: env.state.folder(for: network))
        let me = g.selfPath()
        try g.writeScript(paths.ifup, QemuCommand.hookScript(action: "ifup", kvmnet: me, stateDir: env.stateDir, network: network))
        try g.writeScript(paths.ifdown, QemuCommand.hookScript(action: "ifdown", kvmnet: me, stateDir: env.stateDir, network: network))
    }

    /// Launches the guests of `network` (brought up already), in parallel, and waits until each
    /// has configured its network. On failure the guests it started are stopped again.
    public func launchGuests(_ req: GuestRequest, network: NetworkName, bootTimeout: Double = 180,
                             progress: (String) -> Void) throws -> [GuestRecord] {
        let g = try guestControl()
        guard let qemu = g.qemuBinary() else {
            throw KVMNetError.failure("qemu is not installed: install the Debian package qemu-system-x86 (apt-get install qemu-system-x86)")
        }
        guard var record = try env.state.load(network) else { throw KVMNetError.failure("network \(network) is not up") }
        let kvm: Bool
        switch req.accel {
        case .kvm:
            guard g.kvmUsable() else {
                throw KVMNetError.failure("--accel kvm: KVM is not usable here (/dev/kvm does not open, or the CPU shows no vmx/svm); use --accel tcg")
            }
            kvm = true
        case .tcg: kvm = false
        case .auto:
            kvm = g.kvmUsable()
            if !kvm { progress("KVM is not usable here (no vmx/svm in /proc/cpuinfo or no /dev/kvm): guests run under TCG, slower") }
        }
        let specs = try guestSpecs(req, spec: record.spec, record: record, host: try observe())
        func alive(_ r: GuestRecord) -> Bool { r.pid.map { g.startTime(of: $0) == r.startTime } ?? false }
        // Up again: guests still running stay; only the dead ones start again.
        var records = specs.map { GuestRecord(spec: $0, accel: kvm ? "kvm" : "tcg") }
        var toStart = Set(records.indices)
        if let old = record.guests, !old.isEmpty {
            if old.map(\.spec) != specs {
                throw KVMNetError.failure("network \(network) already runs \(old.count) guest(s) set up differently; run `kvmnet down --name \(network)` first to change them")
            }
            records = old
            toStart = Set(old.indices.filter { !alive(old[$0]) })
            if toStart.isEmpty { return old }
            progress("restarting \(toStart.sorted().map { old[$0].spec.name }.joined(separator: ", ")): its qemu is gone")
        }
        let boot: GuestBoot
        if let b = req.boot { boot = b } else {
            let d = try g.defaultGuest(progress: progress)
            boot = .kernel(kernel: d.kernel, initrd: d.initrd)
        }
        let paths = GuestPaths(folder: env.state.folder(for: network))
        if paths.console("guest99").utf8.count > 107 {
            throw KVMNetError.failure("the state folder \(paths.folder) is too deep for qemu's unix sockets (108 bytes): use a shorter --state-dir")
        }
        // 1. Record every guest before starting any, so `down` finds them whatever happens.
        try env.state.withLock {
            record = try env.state.load(network) ?? record
            record.guests = records
            try env.state.save(record)
        }
        do {
            // 2. Start them one after another (each returns once its tap is attached),
            //    then let them boot in parallel.
            for i in records.indices where toStart.contains(i) {
                let name = records[i].spec.name
                for f in [paths.console(name), paths.qmp(name), paths.pidfile(name), paths.log(name)] { g.removeFile(f) }
                if case .image(let base) = boot {
                    try g.createOverlay(base: base, overlay: paths.overlay(name))
                    try g.makeSeed(files: NoCloudSeed.files(guest: records[i].spec, spec: record.spec, sshKeys: req.sshKeys),
                                   at: paths.seed(name))
                }
                let argv = QemuCommand.argv(qemu: qemu, guest: records[i].spec, boot: boot, memoryMiB: req.memoryMiB,
                                            cpus: req.cpus, kvm: kvm, paths: paths)
                let (pid, start) = try g.start(argv, pidfile: paths.pidfile(name))
                records[i].pid = pid
                records[i].startTime = start
                try env.state.withLock {
                    // `down` took the network away meanwhile: this guest must not outlive it.
                    guard var r = try env.state.load(network) else {
                        _ = stopGuests([records[i]], network: network, timeout: 0)
                        throw KVMNetError.failure("network \(network) was taken down while its guests were starting")
                    }
                    r.guests = records
                    try env.state.save(r)
                }
                progress("\(name) started (pid \(pid), \(records[i].accel)) on \(records[i].spec.tap), \(records[i].spec.address.map { "\($0)" } ?? "no address")")
            }
            // 3. Wait for each guest's ready line. A disk image that is not built from the default
            //    guest may never print one: for images that is a notice, not a failure.
            var isImage = false
            if case .image = boot { isImage = true }
            if req.bootWait == 0 {
                progress("not waiting for the guests to boot (--boot-wait 0): see their console logs in \(paths.folder)")
                return records
            }
            let bootTimeout = req.bootWait.map(Double.init) ?? bootTimeout
            let t0 = g.now()
            var waiting = Set(toStart.map { records[$0].spec.name })
            while !waiting.isEmpty {
                for r in records where waiting.contains(r.spec.name) {
                    let name = r.spec.name
                    let log = g.readText(paths.log(name))
                    if log.contains(QemuCommand.readyMarker(name)) {
                        waiting.remove(name)
                        progress("\(name) is up after \(String(format: "%.1f", g.now() - t0)) s")
                        continue
                    }
                    // An image that is not a kvmnet guest never prints the ready line: stop
                    // waiting once its console shows a login prompt (cirros and the like).
                    if isImage, log.contains("login:") {
                        waiting.remove(name)
                        progress("\(name) shows a login prompt but no kvmnet ready line: not waiting for it; see \(paths.log(name))")
                        continue
                    }
                    let dead = r.pid.map { g.startTime(of: $0) != r.startTime } ?? true
                    if log.contains(QemuCommand.failedMarker(name)) || dead {
                        throw KVMNetError.failure("\(name) \(dead ? "exited" : "failed") while booting; the end of its console log:\n" + tail(log))
                    }
                }
                if waiting.isEmpty { break }
                if isImage && req.bootWait == nil && g.now() - t0 > min(bootTimeout, 90) {
                    progress("\(waiting.sorted().joined(separator: ", ")) printed no ready line within \(Int(min(bootTimeout, 90))) s "
                             + "(not an image built by `kvmnet image build`?): see the console logs in \(paths.folder)")
                    return records
                }
                if g.now() - t0 > bootTimeout {
                    let name = waiting.sorted()[0]
                    throw KVMNetError.failure("\(name) did not come up within \(Int(bootTimeout)) s; the end of its console log:\n" + tail(g.readText(paths.log(name))))
                }
                if let sig = env.pendingSignal() { throw KVMNetError.interrupted(signal: sig, "interrupted while guests were booting") }
                g.sleep(seconds: 0.1)
            }
            return records
        } catch {
            // Stop what this call started; guests that were already running stay recorded.
            let started = toStart.map { records[$0] }
            _ = stopGuests(started, network: network, timeout: 0)
            let kept = records.indices.filter { !toStart.contains($0) }.map { records[$0] }
            try? env.state.withLock {
                if var r = try env.state.load(network) { r.guests = kept.isEmpty ? nil : kept; try env.state.save(r) }
            }
            throw error
        }
    }

    /// The guests `req` asks for on this network; checks every guest option (exit 64) before
    /// anything changes. Bridged guests join the uplink's LAN: its prefix and gateway come from
    /// the record once the uplink's addresses moved, else from the uplink itself.
    func guestSpecs(_ req: GuestRequest, spec: NetworkSpec, record: NetworkRecord?, host: HostObservation) throws -> [GuestSpec] {
        var gateway: IPv4Address? = nil
        var lan: CIDRv4? = nil
        if spec.model == .bridged, let uplink = spec.uplink?.rawValue {
            let journal = record?.journal ?? []
            let movedRoutes = journal.compactMap { e -> RouteInfo? in if case .removedRoute(let r) = e { return r } else { return nil } }
            let movedAddrs = journal.compactMap { e -> InterfaceAddress? in if case .removedAddress(let a) = e { return a } else { return nil } }
            let routes = movedRoutes.isEmpty ? host.routes.filter { $0.interface == uplink } : movedRoutes
            // Moved addresses are recorded last first: the primary is the last one.
            let addrs = movedAddrs.isEmpty ? host.addresses.filter { $0.interface == uplink } : movedAddrs.reversed()
            gateway = routes.first { $0.family == .inet && $0.isDefault && $0.isMainTable }?.gateway.flatMap(IPv4Address.init)
            lan = addrs.compactMap(\.ipv4).first
        }
        let hostAddresses = Set(host.addresses.compactMap { $0.ipv4?.address })
        return try GuestPlanner.guests(req, spec: spec, namespace: env.namespace, lanGateway: gateway, lan: lan,
                                       hostAddresses: hostAddresses)
    }

    /// Powers guests off through QMP, all at once; after `timeout` seconds `quit`, then SIGTERM and
    /// SIGKILL to the recorded pid only (checked against its start time). Returns those still running.
    public func stopGuests(_ guests: [GuestRecord], network: NetworkName, timeout: Double) -> [String] {
        guard let g = env.guests else { return [] }
        let paths = GuestPaths(folder: env.state.folder(for: network))
        func alive(_ r: GuestRecord) -> Bool {
            guard let pid = r.pid, let st = r.startTime else { return false }
            return g.startTime(of: pid) == st
        }
        var running = guests.filter(alive)
        func wait(_ seconds: Double) {
            let t0 = g.now()
            while !running.isEmpty {
                running = running.filter(alive)
                if running.isEmpty || g.now() - t0 >= seconds { return }
                g.sleep(seconds: 0.05)
            }
        }
        // A power-button press before the guest's acpid runs is lost: press again every second.
        let t0 = g.now()
        while timeout > 0, !running.isEmpty, g.now() - t0 < timeout {
            for r in running { try? g.qmp(socket: paths.qmp(r.spec.name), command: "system_powerdown") }
            wait(min(1, timeout - (g.now() - t0)))
        }
        for r in running { try? g.qmp(socket: paths.qmp(r.spec.name), command: "quit") }
        wait(2)
        for r in running { g.kill(pid: r.pid!, startTime: r.startTime!, signal: SIGTERM) }
        wait(2)
        for r in running { g.kill(pid: r.pid!, startTime: r.startTime!, signal: SIGKILL) }
        wait(2)
        return running.map(\.spec.name)
    }

    /// Writes the stable hooks of a defined network into the config folder.
    public func writeDefinedHooks(_ network: NetworkName) throws -> (ifup: String, ifdown: String) {
        let g = try guestControl()
        guard let store = env.definitions else { throw KVMNetError.failure("no config folder") }
        let folder = store.hooksFolder(network)
        let me = g.selfPath()
        let paths = (folder + "/qemu-ifup", folder + "/qemu-ifdown")
        try g.writeScript(paths.0, QemuCommand.hookScript(action: "ifup", kvmnet: me, stateDir: env.stateDir,
                                                          configDir: store.directory, network: network))
        try g.writeScript(paths.1, QemuCommand.hookScript(action: "ifdown", kvmnet: me, stateDir: env.stateDir,
                                                          configDir: store.directory, network: network))
        return paths
    }

    /// Forgets hook taps that no longer exist (their qemu exited without running ifdown).
    func pruneDeadHookTaps(_ record: inout NetworkRecord) {
        guard let taps = record.hookTaps, !taps.isEmpty, let links = try? env.links.links() else { return }
        let names = Set(links.map(\.name))
        record.hookTaps = taps.filter { names.contains($0) }
    }

    /// Takes down every lazy network of this namespace whose hook taps are all gone (qemu was
    /// killed, so ifdown never ran). Returns the networks taken down.
    @discardableResult
    public func reapLazyNetworks(except keep: NetworkName? = nil) throws -> [NetworkName] {
        try env.state.withLock {
            var reaped: [NetworkName] = []
            for var r in try env.state.all() where r.lazy == true && r.name != keep && r.namespace.inode == env.namespace.inode {
                pruneDeadHookTaps(&r)
                if r.hookTaps?.isEmpty ?? true, (r.guests ?? []).isEmpty {
                    env.log("network \(r.name) was brought up by a hook and has no taps left: taking it down")
                    _ = try down(r.name, guestTimeout: 0)
                    reaped.append(r.name)
                }
            }
            return reaped
        }
    }

    /// `kvmnet hook ifup TAP`: the tap exists already (qemu made it): set its MTU to the bridge's,
    /// attach it, bring it up, record it. Never creates it. A network that is defined but not up
    /// is brought up first (lazily: the last ifdown takes it down again).
    public func hookUp(tap: String, network: NetworkName) throws {
        try env.state.withLock {
            guard let link = try env.links.link(named: tap) else {
                throw KVMNetError.failure("tap \(tap) does not exist (qemu creates it before running the hook; the hook never does)")
            }
            guard link.isTap else {
                throw KVMNetError.failure("\(tap) is a \(link.kind ?? "network") interface, not a tap: kvmnet attaches only taps")
            }
            try reapLazyNetworks(except: network)
            if try env.state.load(network) == nil {
                guard let definition = try env.definitions?.load(network) else {
                    throw KVMNetError.failure("network \(network) is neither up nor defined: run `kvmnet up` or `kvmnet define` first")
                }
                var request = try definition.request()
                if let o = definition.tapOwner {
                    guard let uid = env.userID(o) else { throw KVMNetError.usage("unknown user '\(o)' in the definition of \(network)") }
                    request.tapOwner = uid
                }
                _ = try up(request, lazy: true)
            }
            guard var record = try env.state.load(network) else { throw KVMNetError.failure("network \(network) is not up") }
            try checkNamespace(record)
            let bridge = record.spec.bridge.rawValue
            // One request: `ip link set TAP mtu M master BR up`.
            try env.links.setLink(tap, LinkChange(mtu: link.mtu == record.spec.mtu ? nil : record.spec.mtu,
                                                  master: .some(bridge), up: link.isUp ? nil : true))
            var taps = record.hookTaps ?? []
            if !taps.contains(tap) { taps.append(tap); record.hookTaps = taps; try env.state.save(record) }
        }
    }

    /// `kvmnet hook ifdown TAP`: brings the tap down and detaches it (undoing ifup), and records that. Without CAP_NET_ADMIN (qemu
    /// dropped its privileges) it says so and leaves the record for `down`.
    public func hookDown(tap: String, network: NetworkName) throws {
        guard env.canAdministerNetwork else {
            env.log("ifdown \(tap): no CAP_NET_ADMIN (qemu dropped its privileges); `kvmnet down` will clean up")
            return
        }
        try env.state.withLock {
            guard var record = try env.state.load(network) else { return }
            if let link = try env.links.link(named: tap), link.masterIndex != 0,
               let master = try env.links.links().first(where: { $0.index == link.masterIndex }),
               master.name == record.spec.bridge.rawValue {
                try env.links.setLink(tap, LinkChange(master: .some(nil), up: link.isUp ? false : nil))
            }
            if let taps = record.hookTaps, taps.contains(tap) {
                record.hookTaps = taps.filter { $0 != tap }
                try env.state.save(record)
            }
            // The seed's isalone_bridge: the last ifdown of a network a hook brought up takes it down.
            if record.lazy == true {
                pruneDeadHookTaps(&record)
                if (record.hookTaps ?? []).filter({ $0 != tap }).isEmpty, (record.guests ?? []).isEmpty {
                    _ = try down(network, guestTimeout: 0)
                }
            }
        }
    }
}

func tail(_ log: String, lines: Int = 15) -> String {
    log.replacingOccurrences(of: "\r", with: "").split(separator: "\n", omittingEmptySubsequences: false)
        .suffix(lines).map { "    " + $0 }.joined(separator: "\n")
}
