import ArgumentParser
import Foundation

/// Options from the environment, and what `--print-config` shows.
///
/// Every long option `--NAME` of `serve` and `relay` may also be set as
/// `STATECAST_NAME` (upper case, `-` → `_`): `STATECAST_PORT=9000`,
/// `STATECAST_DEBOUNCE_MS=100`, `STATECAST_LOG_FORMAT=json`; a flag is on with
/// `1`, `true`, `yes` or `on` (`STATECAST_STDIN=1`). The command line wins over
/// the environment, which wins over the default. `STATECAST_TOKEN` keeps its own
/// rule: `--token`, then `--token-file`, then `STATECAST_TOKEN`.
///
/// The options are read from the commands' own help, so a new option is
/// settable from the environment without being listed here.
struct EnvironmentOptions: Sendable {
    /// One effective setting, for `--print-config`.
    struct Setting: Sendable, Equatable {
        let name: String
        let value: String
        let source: String
    }

    /// What argument-parser parses: the command line plus options from the environment.
    let arguments: [String]
    /// Every option of the chosen subcommand, with its value and where it came from.
    let settings: [Setting]

    /// This process's arguments and environment.
    static let current = EnvironmentOptions(
        arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)

    private static let prefix = "STATECAST_"
    private static let notSettings: Set<String> = ["help", "version", "print-config", "generate-completion-script"]
    private static let enabling: Set<String> = ["1", "true", "yes", "on"]

    init(arguments: [String], environment: [String: String]) {
        let command: any ParsableCommand.Type
        let offset: Int
        switch arguments.first {
        case "relay": (command, offset) = (Relay.self, 1)
        case "serve": (command, offset) = (Serve.self, 1)
        default: (command, offset) = (Serve.self, 0)
        }
        let asksForHelp = arguments.contains { ["-h", "--help", "--version", "-V", "help"].contains($0) || $0.hasPrefix("--generate-completion-script") || $0.hasPrefix("--experimental") }
        var injected: [String] = []
        var settings: [Setting] = []
        for option in Self.options(of: command) {
            let variable = Self.prefix + option.name.uppercased().replacingOccurrences(of: "-", with: "_")
            if let given = option.value(in: arguments) {
                settings.append(Setting(name: option.name, value: option.name == "token" ? "(set)" : given, source: "command line"))
            } else if let value = environment[variable], !value.isEmpty {
                if option.name == "token" {
                    settings.append(Setting(name: option.name, value: "(set unless --token-file is given)", source: variable))
                    continue
                }
                if option.takesValue {
                    injected += ["--\(option.name)", value]
                } else if Self.enabling.contains(value.lowercased()) {
                    injected.append("--\(option.name)")
                }
                settings.append(Setting(name: option.name, value: option.takesValue ? value : (Self.enabling.contains(value.lowercased()) ? "on" : "off"), source: variable))
            } else {
                settings.append(Setting(name: option.name, value: option.defaultValue ?? (option.takesValue ? "(none)" : "off"), source: "default"))
            }
        }
        self.arguments = asksForHelp ? arguments : Array(arguments.prefix(offset)) + injected + Array(arguments.dropFirst(offset))
        self.settings = settings
    }

    /// `--print-config`: one `name = value  (source)` line per option; a token is never shown.
    var description: String {
        let width = settings.map(\.name.count).max() ?? 0
        return settings.map { setting in
            setting.name.padding(toLength: width, withPad: " ", startingAt: 0) + " = \(setting.value)  (\(setting.source))"
        }.joined(separator: "\n")
    }

    /// One option as the help shows it: `-p, --port <port>  … (default: 9876)`.
    struct Option: Sendable {
        let name: String
        let short: Character?
        let takesValue: Bool
        let defaultValue: String?

        /// The value the command line gives (the last one), "on" for a flag; nil when absent.
        func value(in arguments: [String]) -> String? {
            var found: String?
            var index = 0
            while index < arguments.count {
                let argument = arguments[index]
                if argument == "--" { break }
                let matchesShort = short.map { argument == "-\($0)" } ?? false
                if argument == "--\(name)" || matchesShort {
                    found = takesValue ? (index + 1 < arguments.count ? arguments[index + 1] : "") : "on"
                    if takesValue { index += 1 }
                } else if argument.hasPrefix("--\(name)=") {
                    found = String(argument.dropFirst(name.count + 3))
                }
                index += 1
            }
            return found
        }
    }

    /// The options a command's help lists, in order. An option's line is
    /// `  -p, --port <port>  Help… (default: 9876)`; a long name puts the help
    /// text on the next line.
    static func options(of command: any ParsableCommand.Type) -> [Option] {
        let lines = StateCastHost.helpMessage(for: command, columns: 100_000).split(separator: "\n").map(String.init)
        let optionLine = /^\s+(?:-(\w), )?--([a-z0-9-]+)( <[^>]+>)?(.*)$/
        let defaultValue = /default: ([^)]*)\)\s*$/
        var options: [Option] = []
        for (index, line) in lines.enumerated() {
            guard let match = try? optionLine.wholeMatch(in: line) else { continue }
            let name = String(match.2)
            guard !notSettings.contains(name), !options.contains(where: { $0.name == name }) else { continue }
            var help = String(match.4)
            if help.trimmingCharacters(in: .whitespaces).isEmpty, index + 1 < lines.count { help = lines[index + 1] }
            options.append(Option(name: name, short: match.1.flatMap(\.first), takesValue: match.3 != nil,
                                  defaultValue: (try? defaultValue.firstMatch(in: help)).map { String($0.1) }))
        }
        return options
    }
}
