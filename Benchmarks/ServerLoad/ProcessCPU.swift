#if canImport(Glibc)
import Glibc
#endif

/// CPU time this process has used (user + system, all threads), in seconds: a run's CPU per
/// call does not depend on how busy the machine is, as its wall time does.
enum ProcessCPU {
    static var seconds: Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }
}
