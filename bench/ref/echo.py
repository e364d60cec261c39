# Peer: Python asyncio TCP and UDP echo on 127.0.0.1 (Protocol API, the
# fastest asyncio form). Prints "tcp PORT udp PORT" when ready.
import asyncio
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport

    def data_received(self, data):
        self.t.write(data)


class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.t = transport

    def datagram_received(self, data, addr):
        self.t.sendto(data, addr)


async def main():
    loop = asyncio.get_running_loop()
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = await loop.create_server(Echo, '127.0.0.1', port, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    await loop.create_datagram_endpoint(UdpEcho, local_addr=('127.0.0.1', port))
    print(f'tcp {port} udp {port}', flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
