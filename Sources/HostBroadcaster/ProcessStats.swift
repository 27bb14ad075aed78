import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// This process's resources, read from /proc/self, for the standard
/// `process_*` metrics (the names Prometheus client libraries use).
struct ProcessStats {
    var residentBytes: Double?
    var virtualBytes: Double?
    var cpuSeconds: Double?
    var openFileDescriptors: Double?
    var startTimeSeconds: Double?

    /// The figures now; a missing /proc leaves them nil (and out of the scrape).
    static func current() -> ProcessStats {
        var stats = ProcessStats()
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        if let statm = read("/proc/self/statm")?.split(separator: " "), statm.count >= 2,
           let size = Double(statm[0]), let resident = Double(statm[1]) {
            stats.virtualBytes = size * pageSize
            stats.residentBytes = resident * pageSize
        }
        // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15, starttime 22.
        if let stat = read("/proc/self/stat"), let close = stat.lastIndex(of: ")") {
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 19, let user = Double(fields[11]), let system = Double(fields[12]), let start = Double(fields[19]),
               let boot = bootTime() {
                stats.cpuSeconds = (user + system) / ticks
                stats.startTimeSeconds = boot + start / ticks
            }
        }
        if let directory = opendir("/proc/self/fd") {
            var count = 0
            while let entry = readdir(directory) {
                if entry.pointee.d_name.0 != UInt8(ascii: ".") { count += 1 }
            }
            closedir(directory)
            stats.openFileDescriptors = Double(max(0, count - 1))  // minus the descriptor opendir holds
        }
        return stats
    }

    func write(to out: inout PrometheusText) {
        if let residentBytes { out.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", [("", residentBytes)]) }
        if let virtualBytes { out.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", [("", virtualBytes)]) }
        if let cpuSeconds { out.counter("process_cpu_seconds_total", "User and system CPU time spent in seconds.", [("", cpuSeconds)]) }
        if let openFileDescriptors { out.gauge("process_open_fds", "Open file descriptors.", [("", openFileDescriptors)]) }
        if let startTimeSeconds {
            out.gauge("process_start_time_seconds", "Start time of the process since the Unix epoch in seconds.", [("", startTimeSeconds)])
        }
    }

    private static func bootTime() -> Double? {
        guard let stat = read("/proc/stat") else { return nil }
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    private static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
