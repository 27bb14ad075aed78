// swift-tools-version: 6.1
// Microbenchmarks for StateCast's per-message work (issue #5), on ordo-one/benchmark.
// A separate package so the main one never depends on the benchmark tooling.
//
//   cd Benchmarks && swift package --scratch-path ../.build-bench benchmark
import PackageDescription

let package = Package(
    name: "StateCastBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "StateCast", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "StateCastBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Envelope", package: "StateCast"),
                .product(name: "Debounce", package: "StateCast"),
            ],
            path: "Benchmarks/StateCastBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
