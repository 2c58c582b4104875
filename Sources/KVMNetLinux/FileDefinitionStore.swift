import Foundation
import Glibc
import KVMNetCore

/// Network definitions as `<config-dir>/<NET>.json`, written atomically; hooks under
/// `<config-dir>/hooks/<NET>/`.
public final class FileDefinitionStore: DefinitionStore {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    func path(_ network: NetworkName) -> String { "\(directory)/\(network).json" }

    public func load(_ network: NetworkName) throws -> NetworkDefinition? {
        let p = path(network)
        guard let data = FileManager.default.contents(atPath: p) else {
            if access(p, F_OK) == 0 { throw HostError.permission("read \(p): permission denied") }
            return nil
        }
        return try NetworkDefinition.parse(data, file: p)
    }

    public func read(file: String) throws -> NetworkDefinition {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw KVMNetError.usage("cannot read the definition file \(file)")
        }
        return try NetworkDefinition.parse(data, file: file)
    }

    public func save(_ definition: NetworkDefinition, as network: NetworkName) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
            try definition.encoded().write(to: URL(fileURLWithPath: path(network)), options: .atomic)
        } catch {
            throw HostError.permission("write \(path(network)): \(error.localizedDescription)")
        }
    }

    public func remove(_ network: NetworkName) throws -> Bool {
        let p = path(network)
        guard access(p, F_OK) == 0 else { return false }
        try FileManager.default.removeItem(atPath: p)
        try? FileManager.default.removeItem(atPath: hooksFolder(network))
        return true
    }
}
