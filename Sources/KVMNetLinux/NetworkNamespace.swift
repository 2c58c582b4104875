import CKVMNetShim
import Glibc
import KVMNetCore

/// Switching into a named network namespace, and telling which one the caller is in.
public enum NetworkNamespace {
    /// Where `ip netns add` keeps its namespaces.
    public static let directory = "/run/netns"

    /// Moves the calling thread into the network namespace `/run/netns/NAME`, like
    /// `ip netns exec NAME`.
    ///
    /// Call it at the very start of `main`, before any other thread exists: namespaces belong
    /// to threads, and only threads created afterwards (and child processes) inherit it.
    /// 1. open /run/netns/NAME, 2. setns(CLONE_NEWNET),
    /// 3. unshare(CLONE_NEWNS) and make every mount a slave, so nothing propagates back,
    /// 4. lazily unmount /sys and mount a fresh sysfs, so /sys/class/net shows the namespace.
    /// Needs root (CAP_SYS_ADMIN). Throws `.failure` when the namespace does not exist,
    /// `.permission` on EPERM/EACCES.
    public static func enter(named name: String) throws(KVMNetError) {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw .usage("bad network namespace name \"\(name)\": it names a file in \(directory)")
        }
        let path = "\(directory)/\(name)"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            if e == ENOENT { throw .failure("network namespace \(name) does not exist (ip netns add \(name))") }
            throw error(e, "open \(path)")
        }
        let joined = kvmnet_setns_net(fd)
        close(fd)
        try check(joined, "enter network namespace \(name)")
        try check(kvmnet_unshare_mount(), "enter network namespace \(name): unshare the mount namespace")
        try check(kvmnet_make_mounts_slave(), "enter network namespace \(name): make / a slave mount")
        try check(kvmnet_remount_sysfs(name), "enter network namespace \(name): mount sysfs on /sys")
    }

    /// The network namespace of the calling thread.
    ///
    /// The inode is that of /proc/thread-self/ns/net (a thread's namespace may differ from the
    /// main thread's, which /proc/self shows). `isRoot` says whether it is the namespace of
    /// PID 1, read from /proc/1/ns/net; when that cannot be read (even root may not, in some
    /// sandboxes), it says whether the inode is the fixed one Linux ≥ 6.18 gives the initial
    /// namespace, and on older kernels it falls back to "has no /run/netns name".
    /// `name` is the /run/netns entry with the same inode, if any.
    public static func currentIdentity() -> NamespaceIdentity {
        let own = identity(of: "/proc/thread-self/ns/net") ?? identity(of: "/proc/self/ns/net")
        guard let own else { return NamespaceIdentity(name: nil, inode: 0, isRoot: true) }
        let name = self.name(of: own)
        let isRoot: Bool
        if let first = identity(of: "/proc/1/ns/net") {
            isRoot = first == own
        } else if own.inode == initialNamespaceInode || kernelHasFixedInitialInode() {
            isRoot = own.inode == initialNamespaceInode
        } else {
            isRoot = name == nil
        }
        return NamespaceIdentity(name: isRoot ? nil : name, inode: own.inode, isRoot: isRoot)
    }

    /// PROC_NET_INIT_INO: the inode of the initial network namespace since Linux 6.18
    /// (earlier kernels numbered it like any other namespace, from 0xF0000000 up).
    static let initialNamespaceInode: UInt64 = 0xEFFF_FFF9

    /// Whether the running kernel is 6.18 or later (uname release "6.18.44-…").
    static func kernelHasFixedInitialInode() -> Bool {
        var u = utsname()
        guard uname(&u) == 0 else { return false }
        let release = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2 else { return false }
        return (numbers[0], numbers[1]) >= (6, 18)
    }

    /// The name under /run/netns of a namespace, if it has one.
    static func name(of id: FileIdentity) -> String? {
        guard let dir = opendir(directory) else { return nil }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            if identity(of: "\(directory)/\(name)") == id { return name }
        }
        return nil
    }

    /// Device and inode of a namespace file (stat follows the magic link).
    struct FileIdentity: Equatable {
        var device: UInt64
        var inode: UInt64
    }

    static func identity(of path: String) -> FileIdentity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    private static func check(_ result: Int32, _ operation: String) throws(KVMNetError) {
        if result < 0 { throw error(-result, operation) }
    }

    /// Namespace errors as the user sees them: EPERM/EACCES → `.permission` (exit 77), else `.failure`.
    private static func error(_ number: Int32, _ operation: String) -> KVMNetError {
        let message = "\(operation): \(String(cString: strerror(number))) (errno \(number))"
        if number == EPERM || number == EACCES { return .permission(message + "; run as root") }
        return .failure(message)
    }
}
