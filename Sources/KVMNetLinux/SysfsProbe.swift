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
}
