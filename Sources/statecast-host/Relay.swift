import ArgumentParser
import Envelope
import Foundation
import HostBroadcaster
import Logging
import ServiceLifecycle
import StateCastRelay

/// `statecast-host relay --redis URL --channel NAME …`: serve another host's
/// session, fed through Redis (docs/SCALING.md).
struct Relay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a session published to Redis by `serve --redis`: viewers cannot tell a relay from the host.")

    @OptionGroup(title: "Redis") var redis: RedisOptions

    @OptionGroup var serving: ServingOptions

    func validate() throws {
        guard serving.printConfig || (redis.redis != nil && redis.channel != nil) else {
            throw ValidationError("a relay needs --redis redis://HOST:PORT and --channel NAME (the ones the host was started with)")
        }
    }

    func run() async throws {
        Console.ignoreBrokenPipes()
        if serving.printedConfiguration() { return }
        var (configuration, secret) = try serving.hostConfiguration()
        let logger = serving.bootstrapLogging(label: "statecast.relay", secret: secret)

        let (url, channel) = try redis.parsed()
        let feed: RelayFeed
        let start: RelayFeed.Start
        do throws(RedisError) {
            feed = try RelayFeed(url: url, channel: channel, logger: logger)
            start = try feed.initialState {
                Console.out("Waiting for a host to publish on \(channel) at \(url) …")
            }
        } catch {
            Console.error(error.description)
            throw ExitCode(1)
        }

        configuration.initialSeq = start.seq
        configuration.initialEpoch = start.epoch

        let host = HostBroadcaster(configuration: configuration, logger: logger)
        do {
            try host.start(initial: start.session)
        } catch {
            Console.error(error.description)
            throw ExitCode(1)
        }
        feed.start(serving: host)

        Console.out("Relaying \(channel) from \(url)")
        serving.announce(name: start.session.name, port: host.status.port, token: secret)

        let group = ServiceGroup(configuration: .init(
            services: [RelayService(feed: feed, host: host, logger: logger)],
            gracefulShutdownSignals: [.sigint, .sigterm], logger: logger))
        try await group.run()
    }
}

/// `--redis URL --channel NAME`, shared by `serve` (publish) and `relay` (follow).
struct RedisOptions: ParsableArguments {
    @Option(help: "Redis server, redis://HOST:PORT[/DB]: `serve` publishes every envelope there; `relay` serves what is published.")
    var redis: String?

    @Option(help: "Channel name in Redis (keys statecast:NAME…); letters, digits and . _ -.")
    var channel: String?

    func validate() throws {
        if (redis == nil) != (channel == nil) { throw ValidationError("--redis and --channel go together; give both or neither") }
    }

    /// The parsed URL and channel; prints the problem and exits 2 when one is malformed.
    func parsed() throws -> (RedisURL, RedisChannel) {
        do throws(RedisError) {
            return (try RedisURL(parsing: redis ?? ""), try RedisChannel(channel ?? ""))
        } catch {
            Console.error(error.description)
            throw ExitCode(2)
        }
    }

    /// For `serve --redis`: checks that Redis answers (exit 1 naming the URL if
    /// not) and attaches a publisher to `configuration` (seq, epoch, onBroadcast).
    func attachPublisher(to configuration: inout HostConfiguration, initial: Session, logger: Logger) throws -> RedisPublisher? {
        guard redis != nil else { return nil }
        let (url, channel) = try parsed()
        do throws(RedisError) {
            return try RedisPublisher.attach(to: &configuration, url: url, channel: channel, initial: initial, logger: logger)
        } catch {
            Console.error(error.description)
            throw ExitCode(1)
        }
    }
}
