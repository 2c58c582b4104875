import Foundation

/// Golden files: compare text with a file under a test target's Fixtures folder.
/// Run with `KVMNET_REGENERATE=1` to rewrite the files; reviewers then read the diff.
public enum Golden {
    /// Returns nil when `actual` matches the file, else a message with the first differing line.
    public static func check(_ actual: String, _ name: String, testFile: String = #filePath) -> String? {
        let dir = URL(fileURLWithPath: testFile).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let url = dir.appendingPathComponent(name)
        if ProcessInfo.processInfo.environment["KVMNET_REGENERATE"] == "1" {
            try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? actual.write(to: url, atomically: true, encoding: .utf8)
            return nil
        }
        guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
            return "golden file \(name) is missing: run the tests with KVMNET_REGENERATE=1 and review it"
        }
        if expected == actual { return nil }
        let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
        let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
        for i in 0..<max(a.count, e.count) {
            let x = i < a.count ? String(a[i]) : "<end>"
            let y = i < e.count ? String(e[i]) : "<end>"
            if x != y { return "\(name) differs at line \(i + 1):\n  expected: \(y)\n  actual:   \(x)" }
        }
        return "\(name) differs"
    }
}
