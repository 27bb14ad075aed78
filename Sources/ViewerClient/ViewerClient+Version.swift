import CLibWebSockets
import Envelope

extension ViewerClient {
    /// The libwebsockets version this process runs on, e.g. `4.1.6`.
    public static var libwebsocketsVersion: String { StateCastVersion.trimmingBuildSuffix(String(cString: statecast_lws_version())) }
}
