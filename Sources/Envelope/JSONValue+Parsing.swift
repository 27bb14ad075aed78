extension JSONValue {
    /// The deepest nesting of arrays and objects `init(parsing:)` accepts.
    public static let maximumNestingDepth = 512

    /// Decodes one JSON value from UTF-8 bytes.
    ///
    /// `[UInt8]`, `ArraySlice<UInt8>`, `UnsafeRawBufferPointer` and other
    /// contiguous collections are read in place; anything else is copied once
    /// into an array first. The rules (BOM, duplicate keys, numbers, surrogates,
    /// depth) are listed on ``JSONValue``.
    ///
    /// - Throws: ``JSONError`` with the kind of problem and its line and column.
    public init(parsing bytes: some Collection<UInt8>) throws(JSONError) {
        let fast: Result<JSONValue, JSONError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONError) -> JSONValue in try Self.parse(buffer) }
        }
        if let fast {
            self = try fast.get()
        } else {
            let copy = Array(bytes)
            self = try copy.withUnsafeBufferPointer { buffer throws(JSONError) -> JSONValue in
                try Self.parse(buffer)
            }
        }
    }

    /// Decodes one JSON value from text (its UTF-8 is read in place).
    ///
    /// - Throws: ``JSONError`` with the kind of problem and its line and column.
    public init(parsing text: String) throws(JSONError) {
        var text = text
        let result = text.withUTF8 { buffer in
            Result { () throws(JSONError) -> JSONValue in try Self.parse(buffer) }
        }
        self = try result.get()
    }

    private static func parse(_ buffer: UnsafeBufferPointer<UInt8>) throws(JSONError) -> JSONValue {
        var parser = JSONParser(buffer, maximumDepth: maximumNestingDepth)
        return try parser.parseDocument()
    }
}
