import Foundation
import Glibc
import KVMNetCore

/// Facts about interfaces that netlink does not tell, read from /sys/class/net.
///
/// sysfs shows the network namespace that was current when /sys was *mounted*, not the
/// thread's: after `NetworkNamespace.enter` (which remounts /sys) it matches; on a thread that
/// only unshared its network namespace it still shows the old one.
public final class SysfsProbe: InterfaceProbe {
    /// The folder holding one entry per interface; `/sys/class/net` unless a test points elsewhere.
    public let root: String

    public init(root: String = "/sys/class/net") { self.root = root }

    /// True for wireless interfaces: `/sys/class/net/NAME/wireless` or `…/phy80211` exists.
    /// Such interfaces cannot be bridge ports. False when the interface is missing.
    public func isWireless(_ name: String) -> Bool {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { return false }
        return Files.exists("\(root)/\(name)/wireless") || Files.exists("\(root)/\(name)/phy80211")
    }

    /// Scans /proc/PID/fdinfo for tun file descriptors attached to `name` (`iff:\tNAME`), among
    /// the processes of this network namespace: fdinfo names the tap but not its namespace, and
    /// another namespace may well have a tap of the same name.
    public func tapHolders(_ names: Set<String>) -> [String: [(pid: Int32, command: String)]] {
        guard !names.isEmpty else { return [:] }
        var out: [String: [(pid: Int32, command: String)]] = [:]
        Self.eachProcessOfThisNamespace { pid, comm in
            for fd in Self.entries("/proc/\(pid)/fdinfo") where Int(fd) != nil {
                guard let text = try? Files.read("/proc/\(pid)/fdinfo/\(fd)", "read fdinfo"),
                      let line = text.split(separator: "\n").first(where: { $0.hasPrefix("iff:") }) else { continue }
                let tap = line.dropFirst(4).trimmingCharacters(in: .whitespaces)
                guard names.contains(tap) else { continue }
                if !(out[tap]?.contains { $0.pid == pid } ?? false) { out[tap, default: []].append((pid, comm())) }
            }
        }
        return out
    }

    /// Reads /proc/net/udp and udp6 of this thread's namespace (no `ss` process), then walks
    /// /proc once for the owners, only when something is bound there. UDP only: DNS and DHCP
    /// servers bind it (the TCP tables are slow to read: the kernel walks every connection).
    public func listeners(ports: Set<Int>) -> [FirewallFacts.Listener] {
        var found: [(socket: ProcNetSocket, inode: UInt64)] = []
        for file in ["udp", "udp6"] {
            guard let text = try? Files.read("/proc/thread-self/net/\(file)", "read /proc/net/\(file)") else { continue }
            found += ProcNetSocket.parse(text).filter { ports.contains($0.0.port) }
        }
        guard !found.isEmpty else { return [] }
        var owners: [UInt64: String] = [:]
        let wanted = Set(found.map(\.inode))
        Self.eachProcessOfThisNamespace { pid, comm in
            for fd in Self.entries("/proc/\(pid)/fd") {
                var buf = [CChar](repeating: 0, count: 64)
                let n = readlink("/proc/\(pid)/fd/\(fd)", &buf, buf.count - 1)
                guard n > 8 else { continue }
                let target = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                guard target.hasPrefix("socket:["), let inode = UInt64(target.dropFirst(8).dropLast()),
                      wanted.contains(inode), owners[inode] == nil else { continue }
                owners[inode] = "\(comm()) (pid \(pid))"
            }
        }
        return found.map { FirewallFacts.Listener(address: $0.socket.address, port: $0.socket.port,
                                                  process: owners[$0.inode] ?? "an unknown program") }
    }

    /// Calls `body` with each process whose network namespace is this thread's (and a lazy
    /// reader of its command name).
    static func eachProcessOfThisNamespace(_ body: (Int32, () -> String) -> Void) {
        var me = stat()
        guard stat("/proc/thread-self/ns/net", &me) == 0 else { return }
        for name in entries("/proc") {
            var ns = stat()
            guard let pid = Int32(name), stat("/proc/\(pid)/ns/net", &ns) == 0, ns.st_ino == me.st_ino else { continue }
            body(pid) { (try? Files.read("/proc/\(pid)/comm", "read comm"))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?" }
        }
    }

    /// The names in a folder (empty when it cannot be read).
    static func entries(_ folder: String) -> [String] {
        guard let dir = opendir(folder) else { return [] }
        defer { closedir(dir) }
        var out: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }
}

/// One line of /proc/net/udp or udp6: a socket bound and unconnected (state 07, no remote
/// address), as a server's is.
public struct ProcNetSocket: Equatable, Sendable {
    public var address: String
    public var port: Int

    /// The bound sockets of one file, with their inodes (the key to /proc/PID/fd).
    /// Addresses are printed as the kernel's words in host byte order: little-endian here.
    public static func parse(_ text: String) -> [(ProcNetSocket, UInt64)] {
        var out: [(ProcNetSocket, UInt64)] = []
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 10, f[3] == "07", let inode = UInt64(f[9]) else { continue }
            let local = f[1].split(separator: ":"), remote = f[2].split(separator: ":")
            guard local.count == 2, let port = Int(local[1], radix: 16), let address = hexAddress(local[0]),
                  remote.count == 2, remote[1] == "0000" else { continue }
            out.append((ProcNetSocket(address: address, port: port), inode))
        }
        return out
    }

    /// "0100007F" → 127.0.0.1; 32 hex digits → an IPv6 address in its short form.
    static func hexAddress(_ hex: Substring) -> String? {
        guard hex.count == 8 || hex.count == 32 else { return nil }
        var bytes: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 8)
            guard let word = UInt32(hex[i..<j], radix: 16) else { return nil }
            withUnsafeBytes(of: word.littleEndian) { bytes += $0 }
            i = j
        }
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var a = in6_addr()
        withUnsafeMutableBytes(of: &a) { $0.copyBytes(from: bytes) }
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count)) != nil else { return nil }
        return String(cString: buf)
    }
}
