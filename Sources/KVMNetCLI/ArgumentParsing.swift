import KVMNetCore

/// One option of a command: its spelling, its value's name (nil for a flag) and its help.
public struct OptionSpec: Sendable {
    public var name: String
    public var value: String?
    public var help: String
    public var repeatable: Bool

    public init(_ name: String, value: String? = nil, help: String, repeatable: Bool = false) {
        self.name = name; self.value = value; self.help = help; self.repeatable = repeatable
    }
}

/// A positional argument.
public struct ArgumentSpec: Sendable {
    public var name: String
    public var help: String
    public var optional: Bool
    public init(_ name: String, help: String, optional: Bool = false) {
        self.name = name; self.help = help; self.optional = optional
    }
}

/// A command's configuration: it feeds both parsing and `--help`, as in swift-argument-parser.
public struct CommandSpec: Sendable {
    public var name: String
    public var abstract: String
    public var arguments: [ArgumentSpec]
    public var options: [OptionSpec]
    public var discussion: String?
    /// Takes everything after `--` as a trailing command (for `exec`).
    public var trailing: String?

    public init(name: String, abstract: String, arguments: [ArgumentSpec] = [], options: [OptionSpec],
                discussion: String? = nil, trailing: String? = nil) {
        self.name = name; self.abstract = abstract; self.arguments = arguments
        self.options = options; self.discussion = discussion; self.trailing = trailing
    }

    public var usage: String {
        var parts = ["kvmnet", name]
        parts += arguments.map { $0.optional ? "[\($0.name)]" : $0.name }
        parts += options.map { o in "[\(o.name)\(o.value.map { " \($0)" } ?? "")]" }
        if let t = trailing { parts.append("-- \(t)") }
        return parts.joined(separator: " ")
    }

    /// The text `kvmnet NAME --help` prints.
    public var help: String {
        var s = "OVERVIEW: \(abstract)\n\nUSAGE: \(wrap(usage, indent: 7))\n"
        if !arguments.isEmpty {
            s += "\nARGUMENTS:\n"
            for a in arguments { s += row(a.name, a.help) }
        }
        s += "\nOPTIONS:\n"
        for o in options { s += row(o.name + (o.value.map { " \($0)" } ?? ""), o.help) }
        s += row("-h, --help", "Show help information.")
        if let d = discussion { s += "\n" + d + "\n" }
        return s
    }
}

func row(_ left: String, _ help: String) -> String {
    let pad = 26
    if left.count + 2 >= pad { return "  \(left)\n" + String(repeating: " ", count: pad) + help + "\n" }
    return "  " + left + String(repeating: " ", count: pad - 2 - left.count) + help + "\n"
}

func wrap(_ text: String, indent: Int, width: Int = 100) -> String {
    var lines: [String] = []
    var current = ""
    for word in text.split(separator: " ") {
        if !current.isEmpty && current.count + 1 + word.count + indent > width {
            lines.append(current); current = String(word)
        } else {
            current += current.isEmpty ? String(word) : " " + word
        }
    }
    lines.append(current)
    return lines.joined(separator: "\n" + String(repeating: " ", count: indent + 7))
}

/// The parsed words of one command.
public struct ParsedArguments: Sendable {
    public var values: [String: [String]] = [:]
    public var flags: Set<String> = []
    public var positionals: [String] = []
    public var trailing: [String] = []
    public var help = false

    public func value(_ name: String) -> String? { values[name]?.last }
    public func has(_ flag: String) -> Bool { flags.contains(flag) }
}

extension CommandSpec {
    /// Parses `argv` (the words after the command name). Errors are usage errors (exit 64)
    /// naming the bad word.
    public func parse(_ argv: [String]) throws(KVMNetError) -> ParsedArguments {
        var p = ParsedArguments()
        var i = 0
        while i < argv.count {
            let word = argv[i]
            i += 1
            if word == "--" {
                guard trailing != nil else { throw usageError("unexpected '--'") }
                p.trailing = Array(argv[i...])
                break
            }
            if word == "-h" || word == "--help" { p.help = true; continue }
            if word.hasPrefix("-") && word.count > 1 {
                var name = word
                var inline: String? = nil
                if let eq = word.firstIndex(of: "=") {
                    name = String(word[..<eq]); inline = String(word[word.index(after: eq)...])
                }
                guard let o = options.first(where: { $0.name == name }) else {
                    throw usageError("unknown option '\(name)'")
                }
                if o.value == nil {
                    if inline != nil { throw usageError("option '\(name)' takes no value") }
                    if !p.flags.insert(name).inserted { throw usageError("option '\(name)' given twice") }
                    continue
                }
                let v: String
                if let inl = inline { v = inl } else {
                    guard i < argv.count else { throw usageError("option '\(name)' needs a value (\(o.value!))") }
                    v = argv[i]; i += 1
                }
                if !o.repeatable, p.values[name] != nil { throw usageError("option '\(name)' given twice") }
                p.values[name, default: []].append(v)
                continue
            }
            p.positionals.append(word)
        }
        if p.help { return p }
        if p.positionals.count > arguments.count {
            throw usageError("unexpected argument '\(p.positionals[arguments.count])'")
        }
        if let missing = arguments.dropFirst(p.positionals.count).first(where: { !$0.optional }) {
            throw usageError("missing \(missing.name)")
        }
        return p
    }

    public func usageError(_ message: String) -> KVMNetError {
        .usage("\(message)\nUsage: \(usage)\n  See 'kvmnet \(name) --help'.")
    }
}

/// Typed accessors that turn option text into validated values, naming the option on error.
extension ParsedArguments {
    func int(_ name: String, in range: ClosedRange<Int>) throws(KVMNetError) -> Int? {
        guard let v = value(name) else { return nil }
        guard let n = Int(v), range.contains(n) else {
            throw .usage("invalid value '\(v)' for \(name): expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    func interface(_ name: String) throws(KVMNetError) -> InterfaceName? {
        guard let v = value(name) else { return nil }
        do { return try InterfaceName(v) } catch { throw .usage("\(name): \(error.description)") }
    }

    func network() throws(KVMNetError) -> NetworkName {
        guard let v = value("--name") else { return .default }
        return try NetworkName(v)
    }
}

/// Options many commands share, spelled and explained once.
enum CommonOptions {
    static let json = OptionSpec("--json", help: "Print one JSON document on stdout.")
    static let network = OptionSpec("--name", value: "NET", help: "The network (default: default).")
    static let onlyNetwork = OptionSpec("--name", value: "NET", help: "Only this network.")
}

extension ParsedArguments {
    /// `--name NET` when given (commands that otherwise cover every network).
    func optionalNetwork() throws(KVMNetError) -> NetworkName? {
        value("--name") == nil ? nil : try network()
    }
}
