// Shared by both fuzz targets (compiled into each; see scripts/fuzz).
import Envelope

/// Stops the process when a property does not hold; libFuzzer then saves the
/// input under `.build-fuzz/artifacts/` as a crash.
func require(_ condition: Bool, _ message: @autoclosure () -> String, line: UInt = #line) {
    if !condition { fatalError("fuzz property violated: \(message())", line: line) }
}

/// Strict equality: same cases, same key order, same string bytes, bit-equal
/// doubles. The compact encoding is injective on those, so comparing it is
/// exactly that test (`==` on `JSONValue` is looser on purpose: `1 == 1.0`).
func identical(_ a: JSONValue, _ b: JSONValue) -> Bool {
    a.encoded() == b.encoded()
}

/// `JSONValue(parsing:)` as a `Result`, for any collection of bytes.
func parseJSON(_ bytes: some Collection<UInt8>) -> Result<JSONValue, JSONError> {
    Result { () throws(JSONError) -> JSONValue in try JSONValue(parsing: bytes) }
}

/// `JSONValue(parsing:)` on a `String` as a `Result`.
func parseJSON(text: String) -> Result<JSONValue, JSONError> {
    Result { () throws(JSONError) -> JSONValue in try JSONValue(parsing: text) }
}

/// True when both parses succeeded with identical values or failed with equal errors.
func sameOutcome(_ a: Result<JSONValue, JSONError>, _ b: Result<JSONValue, JSONError>) -> Bool {
    switch (a, b) {
    case let (.success(x), .success(y)): identical(x, y)
    case let (.failure(x), .failure(y)): x == y
    default: false
    }
}

/// A short, printable rendering of an outcome for failure messages.
func show(_ result: Result<JSONValue, JSONError>) -> String {
    switch result {
    case let .success(value): "success(\(String(value.jsonText.prefix(200))))"
    case let .failure(error): "failure(\(error.kind), offset \(error.offset): \(error.description))"
    }
}

/// Checks an error's position is inside the input and its message is usable.
func checkErrorIsWellFormed(_ error: JSONError, inputCount: Int) {
    require(error.offset >= 0 && error.offset <= inputCount, "error offset \(error.offset) outside 0...\(inputCount)")
    require(error.line >= 1 && error.line <= inputCount + 1, "error line \(error.line) for \(inputCount) bytes")
    require(error.column >= 1 && error.column <= inputCount + 1, "error column \(error.column) for \(inputCount) bytes")
    require(!error.reason.isEmpty && error.description.hasPrefix("line \(error.line), column \(error.column): "),
            "malformed error description: \(error.description)")
}
