/// A bare instant for driving the state machine by hand: milliseconds from zero.
struct TestInstant: InstantProtocol, CustomStringConvertible {
    var offset: Duration

    static func ms(_ milliseconds: Int64) -> TestInstant {
        TestInstant(offset: .milliseconds(milliseconds))
    }

    func advanced(by duration: Duration) -> TestInstant {
        TestInstant(offset: offset + duration)
    }

    func duration(to other: TestInstant) -> Duration {
        other.offset - offset
    }

    static func < (lhs: TestInstant, rhs: TestInstant) -> Bool {
        lhs.offset < rhs.offset
    }

    var description: String { "t=\(offset)" }
}
