/// StateCast's own version, shared by the library targets and both CLIs.
public enum StateCastVersion {
    /// Semantic version of this build.
    public static let string = "0.1.0"

    /// What `--version` and `-V` print: `statecast-host 0.1.0 (libwebsockets 4.1.6)`.
    public static func line(program: String, libwebsockets: String) -> String {
        "\(program) \(string) (libwebsockets \(libwebsockets))"
    }

    /// `4.1.6-` and `4.1.6-v4.1.6-12-gabc` (libwebsockets' own "VERSION-GITHASH") → `4.1.6`.
    public static func trimmingBuildSuffix(_ version: String) -> String {
        String(version.split(separator: " ").first?.split(separator: "-", omittingEmptySubsequences: false).first ?? "")
    }

    /// `-V` alone read as `--version` (argument-parser knows only the long form);
    /// anything else unchanged, so a `-V` that is an option's value stays one.
    public static func expandingShortVersionFlag(_ arguments: [String]) -> [String] {
        arguments == ["-V"] ? ["--version"] : arguments
    }
}
