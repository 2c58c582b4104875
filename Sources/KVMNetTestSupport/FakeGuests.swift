import Foundation
import KVMNetCore

/// Pretend qemu: `start` "boots" a guest whose console log shows the ready line at once,
/// `exec` answers pings from a reachability table, QMP power-down ends the process.
public final class FakeGuests: GuestControl, @unchecked Sendable {
    private let lock = NSLock()
    public var processes: [Int32: UInt64] = [:]
    public var files: [String: String] = [:]
    public var started: [[String]] = []
    public var nextPid: Int32 = 4000
    /// Guests that never print their ready line.
    public var neverReady: Set<String> = []
    /// Guests that ignore ACPI power-down.
    public var ignorePowerdown: Set<String> = []
    /// Which (from, target) pings answer.
    public var reachable: (String, String) -> Bool = { _, _ in true }
    public var clock = 0.0
    public var signals: [(Int32, Int32)] = []
    public var kvm = false

    public init() {}

    func locked<T>(_ f: () throws -> T) rethrows -> T { lock.lock(); defer { lock.unlock() }; return try f() }

    public func qemuBinary() -> String? { "/usr/bin/qemu-system-x86_64" }
    public func kvmUsable() -> Bool { kvm }
    public func defaultGuest(progress: (String) -> Void) throws -> (kernel: String, initrd: String) {
        ("/var/lib/kvmnet/guest/k/vmlinuz", "/var/lib/kvmnet/guest/k/initrd.img")
    }
    public func createOverlay(base: String, overlay: String) throws { locked { files[overlay] = "qcow2 of \(base)" } }
    public func makeSeed(files seed: [String: String], at path: String) throws {
        locked { files[path] = seed.keys.sorted().map { "== \($0)\n\(seed[$0]!)" }.joined() }
    }
    public func buildImage(kernel: String, initrd: String, out: String) throws -> String { locked { files[out] = "disk"; return out } }

    public func start(_ argv: [String], pidfile: String) throws -> (pid: Int32, startTime: UInt64) {
        try locked {
            started.append(argv)
            if argv[0] == "dnsmasq" {
                let pid = nextPid
                nextPid += 1
                processes[pid] = 100 + UInt64(pid)
                files[pidfile] = "\(pid)\n"
                files["/proc/\(pid)/cmdline"] = argv.joined(separator: "\0") + "\0"
                return (pid, processes[pid]!)
            }
            let name = argv[argv.firstIndex(of: "-name")! + 1]
            let pid = nextPid
            nextPid += 1
            processes[pid] = 100 + UInt64(pid)
            let chardev = argv[argv.firstIndex(of: "-chardev")! + 1]
            let log = String(chardev.split(separator: ",").first { $0.hasPrefix("logfile=") }!.dropFirst(8))
            files[log] = neverReady.contains(name) ? "booting\n" : "booting\r\n\(QemuCommand.readyMarker(name))\r\n"
            files[pidfile] = "\(pid)\n"
            guard argv.contains(where: { $0.hasPrefix("tap,") }) else { throw HostError.other("no tap") }
            return (pid, processes[pid]!)
        }
    }

    public func startTime(of pid: Int32) -> UInt64? { locked { processes[pid] } }

    public func kill(pid: Int32, startTime: UInt64, signal: Int32) {
        locked {
            guard processes[pid] == startTime else { return }
            signals.append((pid, signal))
            if signal == SIGKILL || signal == SIGTERM { processes[pid] = nil }
        }
    }

    public func qmp(socket: String, command: String) throws {
        try locked {
            let name = URL(fileURLWithPath: socket).deletingPathExtension().lastPathComponent
            guard let pidfile = files.first(where: { $0.key.hasSuffix("/\(name).pid") }), let pid = Int32(pidfile.value.trimmingCharacters(in: .newlines)),
                  processes[pid] != nil else { throw HostError.notFound("connect \(socket): nothing is listening") }
            if command == "quit" || (command == "system_powerdown" && !ignorePowerdown.contains(name)) { processes[pid] = nil }
        }
    }

    public func exec(console: String, command: String, timeout: Double) throws -> (status: Int32, output: String) {
        let from = URL(fileURLWithPath: console).deletingPathExtension().lastPathComponent
        let words = command.split(separator: " ")
        if words.first == "ping", let target = words.first(where: { $0.contains(".") || $0.hasPrefix("fe80") }) {
            return (reachable(from, String(target)) ? 0 : 1, "")
        }
        return (0, "ran: \(command)\n")
    }

    public func readText(_ path: String) -> String { locked { files[path] ?? "" } }
    /// Paths that pretend not to exist (every other boot file does).
    public var unreadable: Set<String> = []
    public func isReadable(_ path: String) -> Bool { locked { !unreadable.contains(path) } }
    public func writeScript(_ path: String, _ text: String) throws { locked { files[path] = text } }
    public func writeFile(_ path: String, _ text: String) throws { locked { files[path] = text } }
    /// The pretend daemons that run (dnsmasq), by pid.
    public var daemons: [Int32] { locked { processes.keys.filter { files["/proc/\($0)/cmdline"] != nil && processes[$0] != nil }.sorted() } }
    public func removeFile(_ path: String) { locked { files[path] = nil } }
    public func moveFile(_ from: String, to: String) throws -> Bool {
        locked { guard let f = files.removeValue(forKey: from) else { return false }; files[to] = f; return true }
    }
    public func selfPath() -> String { "/usr/local/bin/kvmnet" }
    public func sleep(seconds: Double) { locked { clock += seconds } }
    public func now() -> Double { locked { clock } }
    public func attach(console: String) throws {}
}

extension FakeHost {
    /// The fake host with fake guests, as `main` would assemble it.
    public func environment(guests: FakeGuests) -> HostEnvironment {
        var env = environment
        env.guests = guests
        return env
    }
}
