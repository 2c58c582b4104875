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
        var me = stat()
        guard stat("/proc/thread-self/ns/net", &me) == 0 else { return [:] }
        guard let procs = opendir("/proc") else { return [:] }
        defer { closedir(procs) }
        var out: [String: [(pid: Int32, command: String)]] = [:]
        while let e = readdir(procs) {
            let pidText = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            var ns = stat()
            guard let pid = Int32(pidText), stat("/proc/\(pid)/ns/net", &ns) == 0, ns.st_ino == me.st_ino,
                  let fds = opendir("/proc/\(pid)/fdinfo") else { continue }
            defer { closedir(fds) }
            while let f = readdir(fds) {
                let fd = withUnsafeBytes(of: f.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard Int(fd) != nil, let text = try? Files.read("/proc/\(pid)/fdinfo/\(fd)", "read fdinfo"),
                      let line = text.split(separator: "\n").first(where: { $0.hasPrefix("iff:") }) else { continue }
                let tap = line.dropFirst(4).trimmingCharacters(in: .whitespaces)
                guard names.contains(tap) else { continue }
                let comm = (try? Files.read("/proc/\(pid)/comm", "read comm"))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
                if !(out[tap]?.contains { $0.pid == pid } ?? false) { out[tap, default: []].append((pid, comm)) }
            }
        }
        return out
    }
}
