public import Synchronization  // public: used by inlinable code

/// The standard library's `Mutex`, with its ordering made visible to
/// ThreadSanitizer.
///
/// On Linux a contended `Mutex` spins and hands over inside the standard
/// library, which is not built with TSan instrumentation, so TSan cannot see
/// that one critical section happens before the next and reports false races
/// on the protected value (a plain `Mutex<Int>` counter bumped from 8 threads
/// shows it). An acquire load on entry and a release store on exit, on an
/// atomic touched only inside the lock, make that order visible to TSan; they
/// add no synchronisation of their own (plain moves on x86-64, `ldar`/`stlr`
/// on arm64).
///
/// Public only because `Debouncer`'s inlinable code stores one (inlinable code
/// may reference public declarations only). StateCastSupport is an internal
/// target, not a product: no library's public API mentions `Locked`.
public struct Locked<Value: Sendable>: ~Copyable, Sendable {
    @usableFromInline let mutex: Mutex<Value>
    @usableFromInline let order = Atomic<UInt8>(0)

    /// A lock around `value`.
    @inlinable
    public init(_ value: Value) {
        mutex = Mutex(value)
    }

    /// Runs `body` with exclusive access to the value.
    @inlinable
    public borrowing func withLock<Result: Sendable>(_ body: (inout Value) -> Result) -> Result {
        mutex.withLock { value in
            _ = order.load(ordering: .acquiring)
            defer { order.store(0, ordering: .releasing) }
            return body(&value)
        }
    }
}
