import Foundation
import Glibc
import KVMNetCore

/// Network records as JSON files: `<state-dir>/<NET>/record.json` for the root namespace,
/// `<state-dir>/netns-<NAME>/<NET>/` for a named namespace and `<state-dir>/ns-<inode>/<NET>/`
/// for an unnamed one, so networks of different namespaces never share a folder.
/// One lock file per namespace folder serializes kvmnet processes (flock).
public final class FileStateStore: StateStore {
    public let base: String
    public let namespaceDir: String

    public init(stateDir: String, namespace: NamespaceIdentity) {
        base = stateDir
        if namespace.isRoot { namespaceDir = stateDir }
        else if let n = namespace.name { namespaceDir = "\(stateDir)/netns-\(n)" }
        else { namespaceDir = "\(stateDir)/ns-\(namespace.inode)" }
    }

    public func folder(for network: NetworkName) -> String { "\(namespaceDir)/\(network)" }

    func recordPath(_ network: NetworkName) -> String { folder(for: network) + "/record.json" }

    public func load(_ network: NetworkName) throws -> NetworkRecord? {
        let path = recordPath(network)
        guard let data = FileManager.default.contents(atPath: path) else {
            if access(path, F_OK) == 0 { throw HostError.permission("read \(path): permission denied") }
            return nil
        }
        do {
            let record = try JSONDecoder().decode(NetworkRecord.self, from: data)
            guard record.schemaVersion <= NetworkRecord.currentSchemaVersion else {
                throw KVMNetError.failure("\(path) was written by a newer kvmnet (schema \(record.schemaVersion))")
            }
            return record
        } catch let e as KVMNetError { throw e } catch {
            throw KVMNetError.failure("cannot read the record \(path): \(error)")
        }
    }

    /// Replaces the record atomically (a temporary file renamed over it): a process killed at
    /// any moment leaves the old record or the new one. No fsync: a record describes kernel
    /// state (links, addresses, rules, sysctls, daemons) that does not outlive a reboot, and only
    /// a crash of the machine could lose a write that the page cache holds.
    public func save(_ record: NetworkRecord) throws {
        let dir = folder(for: record.name)
        try makeDirectory(dir)
        let e = JSONEncoder()
        e.outputFormatting = []
        let path = recordPath(record.name)
        try Files.replace(path, Array(try e.encode(record)), mode: 0o644, "write \(path)")
    }

    public func remove(_ network: NetworkName) throws {
        let dir = folder(for: network)
        madeDirectories.remove(dir)
        guard FileManager.default.fileExists(atPath: dir) else { return }
        // The namespace folder and its lock file stay: another process may be waiting on the lock
        // file, and deleting it would let a third take a new one at the same time.
        try FileManager.default.removeItem(atPath: dir)
    }

    public func all() throws -> [NetworkRecord] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: namespaceDir) else { return [] }
        return try names.sorted().compactMap { n in
            guard let net = try? NetworkName(n), access(recordPath(net), F_OK) == 0 else { return nil }
            return try load(net)
        }
    }

    /// How deep this process is inside `withLock` (the lock is re-entrant: a hook that brings a
    /// lazy network up takes it again).
    private var lockDepth = 0

    public func withLock<T>(_ body: () throws -> T) throws -> T {
        if lockDepth > 0 {
            lockDepth += 1
            defer { lockDepth -= 1 }
            return try body()
        }
        try makeDirectory(namespaceDir)
        let path = namespaceDir + "/.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw posixError("open \(path)") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR { throw posixError("lock \(path)") }
        }
        defer { flock(fd, LOCK_UN) }
        lockDepth = 1
        defer { lockDepth = 0 }
        return try body()
    }

    /// Folders this process made or found (a record is written several times per `up`).
    private var madeDirectories: Set<String> = []

    func makeDirectory(_ path: String) throws {
        if madeDirectories.contains(path) { return }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
            madeDirectories.insert(path)
        } catch {
            throw HostError.permission("create \(path): \(error.localizedDescription)")
        }
    }
}

func posixError(_ what: String) -> HostError {
    let e = errno
    let text = "\(what): \(String(cString: strerror(e)))"
    switch e {
    case EPERM, EACCES: return .permission(text)
    case ENOENT: return .notFound(text)
    case EEXIST: return .exists(text)
    default: return .other(text)
    }
}
