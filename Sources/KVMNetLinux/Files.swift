import Glibc
import KVMNetCore

/// Small file helpers on Glibc, so errno reaches the errno funnel intact.
enum Files {
    /// The whole content of a file (read(2) until end of file). `operation` names the error.
    static func read(_ path: String, _ operation: @autoclosure () -> String) throws(HostError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw errnoError(errno, operation()) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw errnoError(errno, operation())
            }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `text` to an existing file with one open(2) and write(2) calls until all is written.
    static func write(_ path: String, _ text: String, _ operation: @autoclosure () -> String) throws(HostError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw errnoError(errno, operation()) }
        defer { close(fd) }
        try writeAll(fd, Array(text.utf8), operation())
    }

    /// Replaces a file atomically: `PATH.tmp` is written with `mode` (whatever the umask), then
    /// renamed over it; readers see the old content or the new. No fsync: these files live in
    /// the state folder (/run) and describe what a reboot wipes.
    static func replace(_ path: String, _ bytes: [UInt8], mode: mode_t, _ operation: @autoclosure () -> String) throws(HostError) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw errnoError(errno, operation()) }
        var failure: HostError? = nil
        do throws(HostError) {
            try writeAll(fd, bytes, operation())
            if fchmod(fd, mode) != 0 { throw errnoError(errno, operation()) }
        } catch { failure = error }
        close(fd)
        if failure == nil, rename(tmp, path) != 0 { failure = errnoError(errno, operation()) }
        if let failure { unlink(tmp); throw failure }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], _ operation: @autoclosure () -> String) throws(HostError) {
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw errnoError(errno, operation())
            }
            written += n
        }
    }

    /// Whether a path exists (stat(2) follows symlinks).
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }
}
