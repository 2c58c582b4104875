import Foundation
import Glibc
import KVMNetCore

/// Runs programs with `posix_spawn` + `waitpid`, feeding stdin and collecting stdout/stderr
/// through pipes with `poll`.
///
/// Not Foundation's `Process`: its `waitUntilExit` hangs in a namespace whose loopback is down.
/// The child inherits the calling thread's namespaces.
public final class PosixCommandRunner: CommandRunner {
    public init() {}

    public func which(_ program: String) -> String? {
        if program.contains("/") { return access(program, X_OK) == 0 ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        for dir in (path + ":/usr/sbin:/sbin").split(separator: ":") {
            let p = "\(dir)/\(program)"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }

    public func run(_ argv: [String], stdin input: String?) throws -> CommandResult {
        try run(argv, stdin: input, passStderr: false)
    }

    /// - Parameter passStderr: the child writes straight to this process's stderr (progress of
    ///   long jobs); the result's stderr is then empty.
    public func run(_ argv: [String], stdin input: String?, passStderr: Bool) throws -> CommandResult {
        try Child(argv, path: which(argv[0]), stdin: input, passStderr: passStderr).finish()
    }

    /// Starts `argv`; as much of `stdin` as the pipe holds (64 KiB) is written now, the rest by
    /// `finish()`.
    public func start(_ argv: [String], stdin input: String?) throws -> any StartedCommand {
        try Child(argv, path: which(argv[0]), stdin: input, passStderr: false)
    }
}

/// One started program with the pipes to its stdin, stdout and stderr.
private final class Child: StartedCommand {
    let pid: pid_t
    let input: [UInt8]
    var written = 0
    var inFD: Int32
    let outFD: Int32, errFD: Int32

    init(_ argv: [String], path: String?, stdin: String?, passStderr: Bool) throws {
        guard let path else { throw HostError.notFound("\(argv[0]): command not found") }
        var inPipe: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard pipe(&inPipe) == 0, pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
            throw HostError.other("pipe: \(String(cString: strerror(errno)))")
        }
        for fd in inPipe + outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        if !passStderr { posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // The child starts with default signal handling and no blocked signals.
        var all = sigset_t(); sigfillset(&all)
        var none = sigset_t(); sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attr, cArgs, environ)
        close(inPipe[0]); close(outPipe[1]); close(errPipe[1])
        guard rc == 0 else {
            close(inPipe[1]); close(outPipe[0]); close(errPipe[0])
            throw rc == ENOENT ? HostError.notFound("\(argv[0]): command not found")
                : HostError.other("spawn \(argv[0]): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
        input = Array((stdin ?? "").utf8)
        inFD = inPipe[1]; outFD = outPipe[0]
        if passStderr { close(errPipe[0]); errFD = -1 } else { errFD = errPipe[0] }
        _ = fcntl(inFD, F_SETFL, O_NONBLOCK)
        feed()
    }

    /// Writes what the stdin pipe takes now; closes it once everything is written (or the
    /// child stopped reading).
    func feed() {
        while inFD >= 0 {
            if written == input.count { close(inFD); inFD = -1; return }
            let n = input[written...].withUnsafeBytes { Glibc.write(inFD, $0.baseAddress, $0.count) }
            if n > 0 { written += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return }
            close(inFD); inFD = -1
        }
    }

    /// Feeds the rest of stdin, collects stdout and stderr until both close, and reaps the child.
    func finish() throws -> CommandResult {
        var out: [UInt8] = [], err: [UInt8] = []
        var open = [outFD] + (errFD >= 0 ? [errFD] : [])
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty || inFD >= 0 {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if inFD >= 0 { fds.append(pollfd(fd: inFD, events: Int16(POLLOUT), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for f in fds where f.revents != 0 {
                if f.fd == inFD { feed(); continue }
                let n = read(f.fd, &buffer, buffer.count)
                if n > 0 {
                    if f.fd == outFD { out += buffer[0..<n] } else { err += buffer[0..<n] }
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    close(f.fd); open.removeAll { $0 == f.fd }
                }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return CommandResult(status: code, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
    }
}
