#!/usr/bin/env python3
"""A TLS terminator for the C client's tests, standing in for a gateway reached over TLS.

    tls_proxy.py CERT.pem KEY.pem HOST:PORT

Accepts TLS connections on 127.0.0.1 (a free port, printed on the first line of stdout) with
CERT/KEY and forwards the bytes of each, both ways, to the plain server at HOST:PORT. Stops on
SIGTERM. Standard library only.
"""
import asyncio
import signal
import ssl
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        writer.close()


async def main():
    cert, key, target = sys.argv[1:4]
    host, port = target.rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
