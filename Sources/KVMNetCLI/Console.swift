import Foundation
import KVMNetCore

/// Where a command writes: stdout carries results (exactly one JSON document with `--json`),
/// stderr carries progress and notices.
public struct Console: Sendable {
    public var out: @Sendable (String) -> Void
    public var err: @Sendable (String) -> Void

    public init(out: @escaping @Sendable (String) -> Void, err: @escaping @Sendable (String) -> Void) {
        self.out = out; self.err = err
    }

    /// Prints a Codable document as pretty JSON with sorted keys.
    func json<T: Encodable>(_ value: T) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        out(String(decoding: try e.encode(value), as: UTF8.self) + "\n")
    }
}
