import Glibc
import KVMNetCore

/// A connected AF_UNIX stream socket with deadline-bound reads (qemu's console and QMP sockets).
final class UnixSocket {
    let fd: Int32
    var buffer: [UInt8] = []

    /// Connects to `path`. Throws `notFound` when nothing listens there.
    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw posixError("socket") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw HostError.other("socket path \(path) is longer than 107 bytes")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let e = posixError("connect \(path)")
            close(fd)
            if case .other = e, errno == ECONNREFUSED { throw HostError.notFound("connect \(path): nothing is listening") }
            throw e
        }
    }

    deinit { close(fd) }

    func send(_ text: String) throws {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; throw posixError("send") }
            bytes = bytes.dropFirst(n)
        }
    }

    /// Reads until `match` finds what it wants in the buffer, or the deadline (monotonic seconds) passes.
    /// Returns nil on timeout or EOF.
    func read<T>(until deadline: Double, _ match: ([UInt8]) -> T?) -> T? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let m = match(buffer) { return m }
            let left = deadline - Clock.now()
            if left <= 0 { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(min(left, 60) * 1000) + 1)
            if r < 0 { if errno == EINTR { continue }; return nil }
            if r == 0 { continue }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { if n < 0 && errno == EINTR { continue }; return match(buffer) }
            buffer += chunk[0..<n]
        }
    }
}

enum Clock {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

extension Array where Element == UInt8 {
    /// The index of the first occurrence of `needle` at or after `from`.
    func find(_ needle: [UInt8], from: Int = 0) -> Int? {
        guard needle.count <= count else { return nil }
        var i = from
        while i + needle.count <= count {
            if self[i] == needle[0] && Array(self[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }
}
