import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// How the synchronous ``ArtifactBackend`` API reaches async-http-client.
///
/// The store's API is synchronous and blocking by design (see ``ArtifactStore``), and it is
/// called from ordinary threads (the CLI, the model server's worker pool, the request log's
/// background threads, the retraining queue) and, in a few places, from async code running on
/// Swift's cooperative pool (the server's start-up, its production-model poller).
///
/// The rule that keeps this deadlock-free: **the blocked thread never has to run anything for
/// the request to finish.** Every request runs on a small `MultiThreadedEventLoopGroup` that
/// belongs to this module alone (not `.singleton`, which the model server's and the gateway's
/// channels run on, and not the cooperative pool), through the future-based
/// `HTTPClient.execute(request:delegate:…)`, never through AHC's async/await API (which would
/// need a cooperative thread to resume on). The caller then waits on a semaphore. So:
///
/// - an ordinary thread blocks until the I/O threads finish;
/// - a cooperative-pool thread blocks the same way: it costs one pool thread for the duration of
///   the request, but nothing the request needs runs on that pool, so it cannot deadlock even
///   when every pool thread is waiting;
/// - an event loop of another group (a model server loop answering Health) blocks the same way;
/// - only a thread of this module's own group could deadlock, and ``blockingWait(_:)`` refuses
///   that with an error instead (nothing in Loupe calls the store from there: the delegates
///   below only move bytes and complete promises).
///
/// `EventLoopFuture.wait()` would do the same as the semaphore but traps when called on any
/// event loop and is unavailable from async contexts in Swift 6; the semaphore states the
/// intent and works from every caller listed above.
enum HTTPBridge {
    /// The event loops all S3 I/O runs on: two threads, for the life of the process.
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    /// One client for the process (connection pooling across stores), never shut down.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(5), read: .seconds(60)),
            decompression: .disabled)
        configuration.httpVersion = .http1Only
        // A failed connect fails the request at once: S3Client's retries (with their backoff and
        // attempt limit) decide what happens next, not a pool retrying until a deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
    }()

    /// True on one of ``group``'s threads, where blocking would deadlock.
    static var onOwnEventLoop: Bool {
        var iterator = group.makeIterator()
        while let loop = iterator.next() {
            if loop.inEventLoop { return true }
        }
        return false
    }

    /// Blocks the calling thread until `future` completes (see the type's discussion).
    static func blockingWait<T: Sendable>(_ future: EventLoopFuture<T>) throws -> T {
        guard !onOwnEventLoop else { throw BridgeMisuse() }
        let semaphore = DispatchSemaphore(value: 0)
        let result = NIOLockedValueBox<Result<T, any Error>?>(nil)
        future.whenComplete { outcome in
            result.withLockedValue { $0 = outcome }
            semaphore.signal()
        }
        semaphore.wait()
        return try result.withLockedValue { $0! }.get()
    }

    struct BridgeMisuse: Error, CustomStringConvertible {
        var description: String { "the S3 store was called from its own I/O thread (it would deadlock)" }
    }
}

/// A response body delivered to a blocking reader as it arrives, with backpressure: when more
/// than `highWater` bytes wait unread, the channel stops reading until the reader catches up.
final class StreamingResponse: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = Void

    // Everything below is guarded by `condition`.
    private let condition = NSCondition()
    private var head: HTTPResponseHead?
    private var chunks: [ByteBuffer] = []
    private var firstChunk = 0
    private var buffered = 0
    private var finished = false
    private var failure: (any Error)?
    private var paused: EventLoopPromise<Void>?
    private var task: HTTPClient.Task<Void>?
    private let highWater: Int
    private let lowWater: Int

    init(highWater: Int = 4 << 20) {
        self.highWater = highWater
        self.lowWater = highWater / 4
    }

    /// Starts the request.
    static func start(_ request: HTTPClient.Request, deadline: NIODeadline?) -> StreamingResponse {
        let response = StreamingResponse()
        let task = HTTPBridge.client.execute(request: request, delegate: response, deadline: deadline)
        response.condition.lock()
        response.task = task
        response.condition.unlock()
        return response
    }

    // MARK: Delegate (event loop side)

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        condition.lock()
        self.head = head
        condition.broadcast()
        condition.unlock()
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        condition.lock()
        defer { condition.unlock() }
        chunks.append(buffer)
        buffered += buffer.readableBytes
        condition.broadcast()
        guard buffered > highWater else { return task.eventLoop.makeSucceededVoidFuture() }
        let promise = task.eventLoop.makePromise(of: Void.self)
        paused = promise
        return promise.futureResult
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {
        condition.lock()
        failure = error
        condition.broadcast()
        condition.unlock()
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    // MARK: Reader (blocking side)

    /// Waits for the response head.
    func waitForHead() throws -> HTTPResponseHead {
        guard !HTTPBridge.onOwnEventLoop else { throw HTTPBridge.BridgeMisuse() }
        condition.lock()
        defer { condition.unlock() }
        while head == nil && failure == nil && !finished { condition.wait() }
        if let head { return head }
        throw failure ?? HTTPClientError.remoteConnectionClosed
    }

    /// Copies up to `buffer.count` bytes of the body into `buffer`; 0 at its end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        var resume: EventLoopPromise<Void>?
        defer { resume?.succeed(()) }
        condition.lock()
        defer { condition.unlock() }
        while firstChunk == chunks.count && failure == nil && !finished { condition.wait() }
        if firstChunk == chunks.count {
            if let failure { throw failure }
            return 0
        }
        var copied = 0
        while copied < buffer.count && firstChunk < chunks.count {
            let n = min(buffer.count - copied, chunks[firstChunk].readableBytes)
            chunks[firstChunk].withUnsafeReadableBytes { source in
                UnsafeMutableRawBufferPointer(rebasing: buffer[copied..<(copied + n)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<n]))
            }
            chunks[firstChunk].moveReaderIndex(forwardBy: n)
            copied += n
            if chunks[firstChunk].readableBytes == 0 { firstChunk += 1 }
        }
        if firstChunk > 64 && firstChunk * 2 > chunks.count {
            chunks.removeFirst(firstChunk)
            firstChunk = 0
        }
        buffered -= copied
        if buffered <= lowWater, let promise = paused {
            paused = nil
            resume = promise
        }
        return copied
    }

    /// The whole (remaining) body; for small bodies such as error documents.
    func readAll(limit: Int = 1 << 20) throws -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try read(into: $0) }
            if n == 0 { return out }
            if out.count < limit { out.append(contentsOf: buffer[0..<min(n, limit - out.count)]) }
        }
    }

    /// Abandons the response: the connection is closed and the reader released.
    func cancel() {
        condition.lock()
        let task = self.task
        let promise = paused
        paused = nil
        let done = finished || failure != nil
        condition.unlock()
        if !done { task?.cancel() }
        promise?.succeed(())
    }
}
