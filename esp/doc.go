// Package esp carries the VXLAN packets of encrypted networks between hosts
// as standard ESP (RFC 4303) with AES-GCM (RFC 4106), encapsulated in UDP on
// port 4500 (RFC 3948). It knows nothing of the switch: it seals and opens
// packets in caller buffers, keeps the anti-replay windows and counts what it
// drops. The switch owns the sockets.
//
// # Why ESP in UDP and not ESP in IP
//
// ESP in UDP (port 4500 to port 4500) is chosen over ESP directly in IP
// (protocol 50):
//
//   - A userspace process sends and receives it on an ordinary UDP socket,
//     the same kind the clear VXLAN path uses, so it keeps sendmmsg/recvmmsg,
//     UDP GSO (a batch of equal-size sealed segments in one send) and UDP GRO.
//     Protocol 50 needs a raw socket (CAP_NET_RAW), which has no GSO or GRO
//     and sees every ESP packet of the host.
//   - It crosses NAT and stateful firewalls that only pass TCP and UDP.
//   - The Linux kernel's xfrm can be the peer: an SA with
//     "encap espinudp 4500 4500 0.0.0.0" sends it without help. To receive
//     it the kernel needs one UDP socket bound to port 4500 with the
//     UDP_ENCAP_ESPINUDP option (IKE daemons such as strongSwan hold one);
//     XfrmCommands prints a one-line way to hold it without an IKE daemon.
//     That socket is the one cost of this choice for kernel peers.
//
// # What is inside
//
// Transport mode, next header 17 (UDP): the protected payload is the whole
// VXLAN UDP datagram, its 8-byte UDP header (source port chosen by the
// sender, destination port 4789, checksum 0) followed by the VXLAN header
// and the inner Ethernet frame. On the wire:
//
//	outer IP (host A -> host B, protocol 17)
//	UDP 4500 -> 4500                                  (RFC 3948 section 2.1)
//	ESP header: SPI (4), sequence number (4)          (RFC 4303 section 2)
//	IV: 8 bytes, the 64-bit sequence number           (RFC 4106 section 3)
//	encrypted: UDP header (dst 4789) | VXLAN | frame | padding | pad length | next header 17
//	ICV: 16 bytes                                     (RFC 4106 section 6)
//
// This is exactly what a Linux host produces for its kernel vxlan device's
// traffic with a transport-mode xfrm policy on "proto udp dport 4789" and an
// SA with espinudp encapsulation, and what it accepts (see XfrmCommands).
// Tunnel mode would add a second, identical IP header for nothing: the
// endpoints of the SA are the VXLAN endpoints.
//
// # Cipher
//
// AES-GCM with a 16-byte ICV (RFC 4106): a 16, 24 or 32-byte AES key plus a
// 4-byte salt per SA. The nonce is salt || IV; the IV is the 64-bit
// sequence number of the packet, unique per SA, so a nonce never repeats
// under one key. The additional authenticated data is the SPI and the 32-bit
// sequence number (RFC 4106 section 5). Padding aligns the trailer to 4 bytes
// (RFC 4303 section 2.4) with the default pattern 1, 2, 3.
//
// # Sequence numbers, ESN and replay
//
// Extended sequence numbers (ESN) are not implemented: an SA sends at most
// 2^32-1 packets and then refuses to send (ErrSeqExhausted, RFC 4303
// section 3.3.3); at one million packets a second that is 71 minutes, so the
// control plane must rotate an SA on its packet count (SA.Sent) as well as on
// its clock. The receiver keeps a sliding window of WindowSize sequence
// numbers per SA (RFC 4303 section 3.4.3) built as a ring of 64-bit blocks
// (the design of RFC 6479), checked before decryption and updated only after
// the ICV verified.
//
// # Keys
//
// DeriveConfig computes an SA's key and salt from the two hosts' X25519
// key pairs (the control plane replicates only public keys); a Table holds
// the old and the new inbound SAs of a peer during a rotation. The control
// plane decides when to rotate.
//
// # Overhead and MTU
//
// Compared with clear VXLAN, an encrypted network's packet carries the outer
// UDP header (8), the ESP header (8), the IV (8), 0-3 bytes of padding, the
// pad length and next header (2) and the ICV (16): 42 to 45 bytes more. On
// a 1500-byte IPv4 underlay the endpoint MTU is 1408 instead of 1450 (see
// Overhead and EndpointMTU).
package esp
