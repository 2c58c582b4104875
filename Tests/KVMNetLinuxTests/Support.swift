import Foundation
import Glibc
import KVMNetCore
import Testing

extension Trait where Self == ConditionTrait {
    /// Skips (with the reason shown) when not root: these tests create network namespaces and taps.
    static var root: Self { .enabled(if: getuid() == 0, "needs root: creates network namespaces") }

    /// Skips when iproute2's `ip` is missing (used to read back what netlink cannot show).
    static var ipTool: Self { .enabled(if: Spawn.find("ip") != nil, "needs iproute2's ip (apt-get install iproute2)") }
}

/// Runs programs with posix_spawn, never Foundation.Process: Process.waitUntilExit() hangs in a
/// fresh network namespace, and posix_spawn starts the child in the calling thread's namespace.
enum Spawn {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func find(_ program: String) -> String? {
        for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] where access("\(dir)/\(program)", X_OK) == 0 {
            return "\(dir)/\(program)"
        }
        return nil
    }

    /// Runs argv to completion and returns its exit status and output.
    static func run(_ argv: [String]) throws -> Output {
        guard let path = find(argv[0]) else { throw HostError.notFound("\(argv[0]): not installed") }
        var out: [Int32] = [0, 0], err: [Int32] = [0, 0]
        guard pipe(&out) == 0, pipe(&err) == 0 else { throw HostError.other("pipe: \(errno)") }
        for fd in out + err { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }   // pipe2 needs _GNU_SOURCE
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, nil, cArgs, environ)
        close(out[1]); close(err[1])
        defer { close(out[0]); close(err[0]) }
        guard spawned == 0 else { throw HostError.other("spawn \(argv): errno \(spawned)") }
        let stdout = drain(out[0]), stderr = drain(err[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Output(status: code, stdout: stdout, stderr: stderr)
    }

    /// Runs argv and fails the test unless it exits 0.
    @discardableResult
    static func check(_ argv: [String]) throws -> String {
        let r = try run(argv)
        guard r.status == 0 else { throw HostError.other("\(argv.joined(separator: " ")): exit \(r.status): \(r.stderr)") }
        return r.stdout
    }

    private static func drain(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `ip -d -j link show dev NAME` as a JSON object.
    static func ipLink(_ name: String) throws -> [String: Any] {
        let text = try check(["ip", "-d", "-j", "link", "show", "dev", name])
        let list = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]
        guard let first = list?.first else { throw HostError.other("ip -j link: no object for \(name)") }
        return first
    }
}

/// Whether a host error is of the given kind (ignoring its message).
func kind(_ error: any Error) -> String {
    switch error as? HostError {
    case .exists: return "exists"
    case .notFound: return "notFound"
    case .permission: return "permission"
    case .busy: return "busy"
    case .other: return "other"
    case nil: return "not a HostError: \(error)"
    }
}

/// Runs `body` and returns the kind of HostError it threw, or "no error".
func errorKind(_ body: () throws -> Void) -> String {
    do { try body(); return "no error" } catch { return kind(error) }
}
