"""RTP packets in a pcap file, as sipp's play_pcap_audio replays them: the
framing shared by make_tone_pcap.py and make_quality_pcap.py.

Each packet is Ethernet / IPv4 (10.0.0.1 -> 10.0.0.2, its checksum set) /
UDP 6000 -> 6000 (no checksum) / RTP version 2; sipp rewrites the
addresses and ports and keeps the RTP header and the timing.
"""
import struct
from typing import Iterable, Tuple

PCMA_PT = 8


def ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def rtp_frame(n: int, seq: int, timestamp: int, ssrc: int, payload: bytes,
              payload_type: int = PCMA_PT, marker: bool = False) -> bytes:
    """The n-th packet (its IP id) of one RTP stream, from Ethernet up."""
    rtp = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | payload_type, seq & 0xFFFF,
                      timestamp & 0xFFFFFFFF, ssrc) + payload
    udp = struct.pack("!HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp  # checksum 0: none
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xB8, 20 + len(udp), n & 0xFFFF, 0x4000, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
    ethernet = bytes.fromhex("020000000002" "020000000001" "0800")
    return ethernet + ip + udp


def write_pcap(path: str, start_seconds: int, frames: Iterable[Tuple[int, bytes]]) -> None:
    """`frames`: (capture time in microseconds after start_seconds, frame)."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
        for usec, data in frames:
            out.write(struct.pack("<IIII", start_seconds + usec // 1_000_000, usec % 1_000_000,
                                  len(data), len(data)))
            out.write(data)
