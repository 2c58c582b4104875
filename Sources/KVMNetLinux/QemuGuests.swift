import Foundation
import Glibc
import KVMNetCore

/// QEMU guests on this machine: processes, the default guest's files, console and QMP sockets.
public final class QemuGuests: GuestControl, @unchecked Sendable {
    let runner = PosixCommandRunner()
    let progressToStderr: Bool

    public init(progressToStderr: Bool = true) { self.progressToStderr = progressToStderr }

    public func qemuBinary() -> String? {
        ["qemu-system-x86_64", "qemu-kvm", "kvm"].lazy.compactMap { self.runner.which($0) }.first
    }

    public func kvmUsable() -> Bool {
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        close(fd)
        let cpuinfo = readText("/proc/cpuinfo")
        return cpuinfo.split(separator: "\n").contains { line in
            line.hasPrefix("flags") && line.split(separator: " ").contains { $0 == "vmx" || $0 == "svm" }
        }
    }

    /// The cache folder of the default guest: KVMNET_GUEST_DIR, else /var/lib/kvmnet/guest.
    public static var guestDir: String {
        let env = ProcessInfo.processInfo.environment["KVMNET_GUEST_DIR"] ?? ""
        return env.isEmpty ? "/var/lib/kvmnet/guest" : env
    }

    /// Builds (or finds in the cache) the default guest by running the embedded build script.
    public func defaultGuest(progress: (String) -> Void) throws -> (kernel: String, initrd: String) {
        let dir = Self.guestDir
        // A folder holding the two files directly is used as it is.
        if access(dir + "/vmlinuz", R_OK) == 0 && access(dir + "/initrd.img", R_OK) == 0 {
            return (dir + "/vmlinuz", dir + "/initrd.img")
        }
        let folder = try buildDefaultGuest(cache: dir, progress: progress)
        return (folder + "/vmlinuz", folder + "/initrd.img")
    }

    /// Runs the build script; its progress lines go to stderr. Returns the guest's folder.
    public func buildDefaultGuest(cache: String, progress: (String) -> Void) throws -> String {
        let script = NSTemporaryDirectory() + "kvmnet-build-guest-\(getpid()).sh"
        try GuestBuildScript.text.write(toFile: script, atomically: true, encoding: .utf8)
        defer { unlink(script) }
        progress("looking for the default guest in \(cache) (building it the first time downloads Debian's cloud kernel)")
        let r = try runner.run(["bash", script, cache], stdin: nil, passStderr: progressToStderr)
        guard r.status == 0, let folder = r.stdout.split(separator: "\n").last.map(String.init), !folder.isEmpty else {
            throw KVMNetError.failure("building the default guest failed (status \(r.status))"
                + (r.stderr.isEmpty ? "" : ": " + r.stderr.suffix(2000))
                + "; inside a network namespace without access to Debian's mirrors, run `kvmnet guest build` outside it first")
        }
        return folder
    }

    public func createOverlay(base: String, overlay: String) throws {
        let abs = base.hasPrefix("/") ? base : FileManager.default.currentDirectoryPath + "/" + base
        guard access(abs, R_OK) == 0 else { throw KVMNetError.failure("disk image \(base) does not exist or cannot be read") }
        let info = try runner.run(["qemu-img", "info", "--output=json", abs], stdin: nil)
        guard info.status == 0,
              let json = try? JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any],
              let format = json["format"] as? String else {
            throw KVMNetError.failure(CommandFailure.describe(argv: ["qemu-img", "info", "--output=json", abs], result: info))
        }
        unlink(overlay)
        let argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-b", abs, "-F", format, overlay]
        let r = try runner.run(argv, stdin: nil)
        guard r.status == 0 else { throw KVMNetError.failure(CommandFailure.describe(argv: argv, result: r)) }
    }

    public func makeSeed(files: [String: String], at path: String) throws {
        let dir = NSTemporaryDirectory() + "kvmnet-seed-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        unlink(path)
        let names = files.keys.sorted()
        let argv: [String]
        if runner.which("genisoimage") != nil {
            argv = ["genisoimage", "-quiet", "-output", path, "-volid", "cidata", "-joliet", "-rock"] + names.map { dir + "/" + $0 }
            try check(argv)
        } else if runner.which("mkfs.vfat") != nil, runner.which("mcopy") != nil {
            // busybox findfs matches labels case-sensitively: the guest looks for both spellings.
            try check(["truncate", "-s", "2M", path])
            try check(["mkfs.vfat", "-n", "CIDATA", path])
            try check(["mcopy", "-i", path] + names.map { dir + "/" + $0 } + ["::"])
        } else {
            throw KVMNetError.failure("making a NoCloud seed needs genisoimage (apt-get install genisoimage), or dosfstools and mtools")
        }
    }

    public func buildImage(kernel: String, initrd: String, out: String) throws -> String {
        let script = NSTemporaryDirectory() + "kvmnet-build-image-\(getpid()).sh"
        try ImageBuildScript.text.write(toFile: script, atomically: true, encoding: .utf8)
        defer { unlink(script) }
        let r = try runner.run(["bash", script, kernel, initrd, out], stdin: nil, passStderr: progressToStderr)
        guard r.status == 0, let path = r.stdout.split(separator: "\n").last.map(String.init), !path.isEmpty else {
            throw KVMNetError.failure("building the disk image failed (status \(r.status))" + (r.stderr.isEmpty ? "" : ": " + r.stderr.suffix(2000)))
        }
        return path
    }

    func check(_ argv: [String]) throws {
        let r = try runner.run(argv, stdin: nil)
        guard r.status == 0 else { throw KVMNetError.failure(CommandFailure.describe(argv: argv, result: r)) }
    }

    public func start(_ argv: [String], pidfile: String) throws -> (pid: Int32, startTime: UInt64) {
        try startInBackground(argv, pidfile: pidfile)()
    }

    public func startInBackground(_ argv: [String], pidfile: String) throws -> () throws -> (pid: Int32, startTime: UInt64) {
        let started = try runner.start(argv, stdin: nil)
        return { [self] in
            let r = try started.finish()
            guard r.status == 0 else {
                throw KVMNetError.failure("\(argv[0].split(separator: "/").last ?? "") failed to start: " + CommandFailure.describe(argv: argv, result: r))
            }
            guard let pid = Int32(readText(pidfile).trimmingCharacters(in: .whitespacesAndNewlines)),
                  let st = startTime(of: pid) else {
                throw KVMNetError.failure("\(argv[0]) started but its pidfile \(pidfile) names no running process")
            }
            return (pid, st)
        }
    }

    public func startTime(of pid: Int32) -> UInt64? {
        let stat = readText("/proc/\(pid)/stat")
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // Fields after the command name start at field 3 (state); starttime is field 22.
        guard fields.count > 19, fields[0] != "Z" else { return nil }
        return UInt64(fields[19])
    }

    public func kill(pid: Int32, startTime: UInt64, signal: Int32) {
        guard self.startTime(of: pid) == startTime else { return }
        _ = Glibc.kill(pid, signal)
    }

    public func qmp(socket path: String, command: String) throws {
        let s = try UnixSocket(path: path)
        let deadline = Clock.now() + 3
        func reply() -> String? {
            guard let nl = s.read(until: deadline, { (buf: [UInt8]) -> Int? in buf.firstIndex(of: 10) }) else { return nil }
            let line = String(decoding: s.buffer[..<nl], as: UTF8.self)
            s.buffer.removeFirst(nl + 1)
            return line
        }
        func call(_ cmd: String) throws {
            try s.send("{\"execute\": \"\(cmd)\"}\n")
            while let line = reply() {
                if line.contains("\"return\"") { return }
                if line.contains("\"error\"") { throw HostError.other("QMP \(cmd): \(line)") }
            }
            throw HostError.other("QMP \(cmd): no answer from \(path)")
        }
        guard reply() != nil else { throw HostError.other("QMP: no greeting on \(path)") }
        try call("qmp_capabilities")
        try call(command)
    }

    /// The serial exec protocol: sync with the shell by echoing a marker until it answers, then
    /// send one line that prints a begin marker, runs the command with stdin from /dev/null,
    /// and prints an end marker with its status. The markers are typed split by '' so the tty's
    /// echo of the line never matches them. One client at a time per console (a lock file).
    public func exec(console: String, command: String, timeout: Double) throws -> (status: Int32, output: String) {
        guard !command.contains("\n"), command.utf8.count <= 900 else {
            throw KVMNetError.failure("the command must be one line of at most 900 bytes")
        }
        let lockFD = open(console + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw posixError("open \(console).lock") }
        defer { Glibc.close(lockFD) }
        while flock(lockFD, LOCK_EX) != 0 && errno == EINTR {}
        let s = try UnixSocket(path: console)
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        var synced = false
        for attempt in 0..<20 {
            // Ctrl-C first on a retry: it clears a half-typed line, an open quote or a command
            // left running by an earlier call that timed out.
            if attempt > 0 { try s.send("\u{03}") }
            try s.send("echo KVMNET_SYNC''_\(tag)_\(attempt)\n")
            let want = Array("KVMNET_SYNC_\(tag)_\(attempt)".utf8)
            if s.read(until: Clock.now() + 1.5, { $0.find(want) }) != nil { synced = true; break }
        }
        guard synced else { throw HostError.other("no answer from the shell on \(console)") }
        s.buffer = []
        try s.send("echo KVMNET_BEGIN''_\(tag); ( \(command) ) </dev/null 2>&1; echo KVMNET_END''_\(tag)_$?\n")
        let deadline = Clock.now() + timeout
        let begin = Array("KVMNET_BEGIN_\(tag)".utf8)
        guard let b = s.read(until: deadline, { buf -> Int? in
            guard let i = buf.find(begin), let nl = buf[(i + begin.count)...].firstIndex(of: 10) else { return nil }
            return nl + 1
        }) else { throw HostError.other("the guest did not start the command within \(Int(timeout)) s") }
        let end = Array("KVMNET_END_\(tag)_".utf8)
        guard let (e, status) = s.read(until: deadline, { buf -> (Int, Int32)? in
            guard let i = buf.find(end, from: b) else { return nil }
            let digits = buf[(i + end.count)...].prefix { $0 >= 48 && $0 <= 57 }
            let after = i + end.count + digits.count
            guard !digits.isEmpty, after < buf.count else { return nil }
            return (i, Int32(String(decoding: digits, as: UTF8.self)) ?? 255)
        }) else { throw HostError.other("the command did not finish within \(Int(timeout)) s") }
        let output = String(decoding: s.buffer[b..<e], as: UTF8.self).replacingOccurrences(of: "\r", with: "")
        return (status, output)
    }

    public func isReadable(_ path: String) -> Bool { access(path, R_OK) == 0 }

    public func readText(_ path: String) -> String {
        guard let d = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: d, as: UTF8.self)
    }

    public func writeScript(_ path: String, _ text: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        if !Files.exists(dir) {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            } catch { throw HostError.permission("create \(dir): \(error.localizedDescription)") }
        }
        try Files.replace(path, Array(text.utf8), mode: 0o755, "write \(path)")
    }

    public func writeFile(_ path: String, _ text: String) throws {
        try Files.replace(path, Array(text.utf8), mode: 0o644, "write \(path)")
    }

    public func removeFile(_ path: String) { unlink(path) }

    public func moveFile(_ from: String, to: String) throws -> Bool {
        guard access(from, F_OK) == 0 else { return false }
        let dir = (to as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try FileManager.default.moveItem(atPath: from, toPath: to)
        } catch { throw HostError.other("move \(from) to \(to): \(error.localizedDescription)") }
        return true
    }

    public func selfPath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    public func sleep(seconds: Double) { usleep(UInt32(seconds * 1_000_000)) }
    public func now() -> Double { Clock.now() }

    /// Raw terminal ↔ console socket until Ctrl-] (0x1d).
    public func attach(console: String) throws {
        let s = try UnixSocket(path: console)
        var saved = termios()
        let tty = isatty(0) == 1
        if tty {
            tcgetattr(0, &saved)
            var raw = saved
            cfmakeraw(&raw)
            tcsetattr(0, TCSANOW, &raw)
        }
        defer { if tty { var t = saved; tcsetattr(0, TCSANOW, &t) } }
        var buf = [UInt8](repeating: 0, count: 4096)
        try s.send("\n")
        loop: while true {
            var fds = [pollfd(fd: 0, events: Int16(POLLIN), revents: 0), pollfd(fd: s.fd, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 { if errno == EINTR { continue }; break }
            if fds[0].revents != 0 {
                let n = read(0, &buf, buf.count)
                if n <= 0 { break }
                if let i = buf[0..<n].firstIndex(of: 0x1d) {
                    if i > 0 { try s.send(String(decoding: buf[0..<i], as: UTF8.self)) }
                    break loop
                }
                try s.send(String(decoding: buf[0..<n], as: UTF8.self))
            }
            if fds[1].revents != 0 {
                let n = recv(s.fd, &buf, buf.count, 0)
                if n <= 0 { break }
                _ = buf.withUnsafeBytes { write(1, $0.baseAddress, n) }
            }
        }
    }
}
