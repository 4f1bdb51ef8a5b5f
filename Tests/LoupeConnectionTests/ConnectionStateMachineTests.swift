import LoupeConnection
import LoupeProtocol
import NIOCore
import Testing

/// Every transition of the connection's life, on the value alone.
@Suite struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine<String>

    static func frame(_ method: Method, id: UInt32, flags: FrameFlags = .request) -> Frame {
        var header = FrameHeader.request(method, requestID: id)
        header.flags = flags
        return Frame(header: header, payload: ByteBuffer())
    }

    static func ready(maxInFlight: Int = 4) -> Machine {
        var machine = Machine(maxInFlight: maxInFlight)
        guard case .handshake = machine.received(frame(.hello, id: 1)) else { fatalError("no handshake") }
        _ = machine.handshakeSucceeded("acme")
        return machine
    }

    @Test func beforeTheHandshakeOnlyHelloAndHealth() {
        var machine = Machine(maxInFlight: 4)
        guard case .health = machine.received(Self.frame(.health, id: 1)) else { Issue.record("health"); return }
        guard case .fail(let error, let header, .beforeHandshake) = machine.received(Self.frame(.predict, id: 2)) else {
            Issue.record("predict before Hello")
            return
        }
        #expect(error.code == .unauthenticated && header?.requestID == 2)
        guard case .drop = machine.received(Self.frame(.hello, id: 3)) else { Issue.record("after fail"); return }
    }

    @Test func framesThatAreNotRequestsAndCompressedOnes() {
        var fresh = Machine(maxInFlight: 4)
        guard case .fail(let error, nil, .notARequest) = fresh.received(Self.frame(.predict, id: 1, flags: .response))
        else { Issue.record("a response frame"); return }
        #expect(error.code == .invalidArgument)

        var early = Machine(maxInFlight: 4)
        guard case .fail(let unimplemented, _, .compressedBeforeHandshake) = early.received(
            Self.frame(.hello, id: 1, flags: [.request, .compressed]))
        else { Issue.record("a compressed Hello"); return }
        #expect(unimplemented.code == .unimplemented)

        var machine = Self.ready()
        guard case .reject(let rejected, let frame, "acme") = machine.received(
            Self.frame(.predict, id: 5, flags: [.request, .compressed]))
        else { Issue.record("a compressed call"); return }
        #expect(rejected.code == .unimplemented && frame.header.requestID == 5)
        guard case .call(_, "acme", _) = machine.received(Self.frame(.predict, id: 6)) else {
            Issue.record("the connection goes on")
            return
        }
    }

    @Test func callsWaitForTheHandshakeInOrder() {
        var machine = Machine(maxInFlight: 2)
        guard case .handshake = machine.received(Self.frame(.hello, id: 1)) else { Issue.record("hello"); return }
        #expect(machine.isAuthenticating)
        for id: UInt32 in [7, 8] {
            guard case .queued = machine.received(Self.frame(.predict, id: id)) else { Issue.record("queue"); return }
        }
        let (queued, close) = machine.handshakeSucceeded("acme")
        #expect(close == nil)
        let ids = queued.compactMap { action -> UInt32? in
            if case .call(let frame, "acme", _) = action { return frame.header.requestID }
            return nil
        }
        #expect(ids == [7, 8])
    }

    @Test func tooManyCallsBeforeTheWelcomeFail() {
        var machine = Machine(maxInFlight: 1)
        _ = machine.received(Self.frame(.hello, id: 1))
        _ = machine.received(Self.frame(.predict, id: 2))
        guard case .fail(let error, _, .tooManyQueued) = machine.received(Self.frame(.predict, id: 3)) else {
            Issue.record("the queue is bounded")
            return
        }
        #expect(error.code == .resourceExhausted)
    }

    @Test func backpressureStopsAndResumesReading() {
        var machine = Self.ready(maxInFlight: 2)
        let reads1 = machine.shouldRead()
        #expect(reads1)
        machine.callStarted(Self.frame(.batchPredict, id: 1).header)
        machine.callStarted(Self.frame(.batchPredict, id: 2).header)
        let reads2 = machine.shouldRead()
        #expect(!reads2)
        let afterCall1 = machine.callFinished(Self.frame(.batchPredict, id: 1).header)
        #expect(afterCall1 == .read)
        let reads3 = machine.shouldRead()
        #expect(reads3)
        let afterCall2 = machine.callFinished(Self.frame(.batchPredict, id: 2).header)
        #expect(afterCall2 == .nothing)
    }

    @Test func aReusedIDInFlightIsAViolationThatClosesAfterTheOthers() {
        var machine = Self.ready()
        guard case .call(let first, _, _) = machine.received(Self.frame(.predict, id: 5)) else { return }
        machine.callStarted(first.header)
        guard case .violation(let error, closeNow: false) = machine.received(Self.frame(.predict, id: 5)) else {
            Issue.record("a reused id")
            return
        }
        #expect(error.code == .invalidArgument)
        guard case .drop = machine.received(Self.frame(.predict, id: 6)) else { Issue.record("no more calls"); return }
        let reads4 = machine.shouldRead()
        #expect(!reads4)
        let afterCall3 = machine.callFinished(first.header)
        #expect(afterCall3 == .close(.output))
        let reads5 = machine.shouldRead()
        #expect(reads5, "an output-closed connection reads and drops until the peer closes")
        // Reused once answered is fine.
        var again = Self.ready()
        guard case .call(let call, _, _) = again.received(Self.frame(.predict, id: 0)) else { return }
        again.callStarted(call.header)
        _ = again.callFinished(call.header)
        guard case .call = again.received(Self.frame(.predict, id: 0)) else { Issue.record("id 0 again"); return }
    }

    @Test func drainClosesTheOutputOnceTheCallsAreAnswered() {
        var idle = Self.ready()
        let onDrain1 = idle.drain()
        #expect(onDrain1 == .output)

        var busy = Self.ready()
        busy.callStarted(Self.frame(.batchPredict, id: 3).header)
        let onDrain2 = busy.drain()
        #expect(onDrain2 == nil)
        let reads6 = busy.shouldRead()
        #expect(!reads6)
        let afterCall4 = busy.callFinished(Self.frame(.batchPredict, id: 3).header)
        #expect(afterCall4 == .close(.output))
    }

    @Test func aHalfCloseWaitsForTheCallsAndTheHandshake() {
        var busy = Self.ready()
        busy.callStarted(Self.frame(.batchPredict, id: 3).header)
        let onInputEnd1 = busy.inputEnded()
        #expect(onInputEnd1 == nil)
        let afterCall5 = busy.callFinished(Self.frame(.batchPredict, id: 3).header)
        #expect(afterCall5 == .close(.all))

        var authenticating = Machine(maxInFlight: 4)
        _ = authenticating.received(Self.frame(.hello, id: 1))
        _ = authenticating.received(Self.frame(.predict, id: 2))
        let onInputEnd2 = authenticating.inputEnded()
        #expect(onInputEnd2 == nil, "the queued call is still to be answered")
        let (queued, close) = authenticating.handshakeSucceeded("acme")
        #expect(queued.count == 1 && close == .all)
    }

    @Test func aRefusedConnectionAnswersOnlyHealth() {
        var machine = Machine(maxInFlight: 4)
        machine.refuse(ProtocolError(code: .resourceExhausted, message: "full"))
        guard case .health = machine.received(Self.frame(.health, id: 1)) else { Issue.record("health"); return }
        guard case .fail(let error, _, .overCapacity) = machine.received(Self.frame(.hello, id: 2)) else {
            Issue.record("hello when refused")
            return
        }
        #expect(error.message == "full")
        let failedNow1 = machine.failed()
        #expect(!failedNow1, "already closing")
    }
}
