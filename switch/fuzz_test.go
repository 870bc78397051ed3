package vswitch

import (
	"net/netip"
	"testing"

	"vxswitch/header"
	"vxswitch/switch/dnsanswer"
	"vxswitch/tap"
	"vxswitch/vxlan"
)

// FuzzUnderlayGRO feeds one GRO read (datagrams of seg bytes back to back,
// as the kernel coalesces them) from host2 to ServeUnderlay with a port
// that takes offloads: it must never panic, and every packet written into
// the port must hold a vnet header and an Ethernet header.
func FuzzUnderlayGRO(f *testing.F) {
	_, dgrams, seg := peerSegments(f, false, 4000, 1398)
	f.Add(dgrams, uint16(seg))
	reply := tcpFrame(f, false, false, true, nil) // from host2's endpoint to port a
	copy(reply[0:6], macA[:])
	copy(reply[6:12], macR[:])
	swapIPv4Addrs(reply)
	f.Add(encap(100, reply), uint16(0))
	f.Add(append(encap(100, eth(macA, macR, 0x0800, 60)), encap(100, eth(macA, macR, 0x0800, 30))...), uint16(vxlan.HeaderLen+60))
	f.Fuzz(func(t *testing.T, data []byte, seg uint16) {
		if len(data) > underlayBuffer {
			return
		}
		s, _, d, u := vnetSwitch(t, true)
		g := groConn(netip.AddrPortFrom(host2, vxlan.Port), [][]byte{data}, []int{int(seg)})
		if err := s.ServeUnderlay(g); err != nil {
			t.Fatal(err)
		}
		if u.Calls() != 0 {
			t.Fatalf("sent %d packets to the underlay", u.Calls())
		}
		for _, p := range d.Written() {
			if len(p) < tap.VnetHdrLen+header.EthernetLen {
				t.Fatalf("wrote a %d-byte packet into the port", len(p))
			}
		}
	})
}

// FuzzFromVnet feeds an arbitrary vnet header and frame, as a TAP with
// offloads hands them over (the input a hostile endpoint controls most),
// to the port path: checksum completion, TSO segmentation, guard and
// forwarding. It must never panic, and every datagram it sends to the
// underlay must carry a valid VXLAN header and an inner Ethernet header.
func FuzzFromVnet(f *testing.F) {
	super := superFrame(f, false, 5000, false, false)
	f.Add(withVnet(tsoHeader(f, super, 1400), super))
	f.Add(withVnet(tap.VnetHdr{Flags: tap.VnetNeedsCsum, CsumStart: 34, CsumOffset: 16}, tcpFrame(f, false, false, true, nil)))
	f.Add(withVnet(tap.VnetHdr{}, eth(macR, macA, 0x0800, 100)))
	f.Add(withVnet(tap.VnetHdr{GSOType: tap.VnetGSOTCPv4, GSOSize: 1, HdrLen: 54}, super))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) < tap.VnetHdrLen || len(pkt) > 65535+tap.VnetHdrLen {
			return
		}
		s, p, _, u := vnetSwitch(t, true)
		b := &txBatch{buf: make([]byte, segmentBuffer), expect: -1}
		s.fromVnet(p, pkt, b)
		s.flushTx(b)
		for _, snd := range u.Sends() {
			if snd.Seg <= 0 {
				t.Fatalf("a send with segment size %d", snd.Seg)
			}
			for off := 0; off < len(snd.Pkt); off += snd.Seg {
				dg := snd.Pkt[off:min(off+snd.Seg, len(snd.Pkt))]
				vni, inner, err := vxlan.Decode(dg)
				if err != nil || vni != 100 || len(inner) < header.EthernetLen {
					t.Fatalf("sent a bad datagram (vni %d, %d inner bytes, %v)", vni, len(inner), err)
				}
			}
		}
	})
}

// FuzzDNSTCPSegments sends a query stream cut into segments at fuzzed
// points, with fuzzed sequence offsets (retransmissions, overlaps, gaps)
// and a fuzzed client window, to the DNS-over-TCP responder. It must never
// panic, every segment it writes must be valid TCP, and its byte
// accounting must hold: outBytes is the sum of the connections' unsent
// answers, each within dnsanswer.OutMax.
func FuzzDNSTCPSegments(f *testing.F) {
	f.Add(framed(testQuery, testQuery, testQuery), []byte{3, 0, 10, 0, 40, 0}, uint16(65535))
	f.Add(framed(testQuery), []byte{1, 0, 1, 0, 1, 0, 1, 0}, uint16(0))
	f.Add(framed(testQuery, testQuery), []byte{20, 250, 5, 0}, uint16(100))
	f.Fuzz(func(t *testing.T, stream, cuts []byte, wnd uint16) {
		w := newNamesWorld(t, Config{DNS: &fakeDNS{answer: fill(700, 0)}}, 1500)
		c := connect(t, w, 1460, wnd)
		off := 0
		for i := 0; i+1 < len(cuts) && off < len(stream); i += 2 {
			n := min(int(cuts[i])+1, len(stream)-off)
			back := int(int8(cuts[i+1])) // a retransmission (<0) or a gap (>0)
			seq := c.seq + uint32(off) + uint32(back)
			start := max(0, min(len(stream), off+back))
			end := min(len(stream), start+n)
			c.send(t, 53, header.TCPFlagACK|header.TCPFlagPSH, seq, c.iss+1, wnd, 0, stream[start:end])
			off += n
		}
		c.frames(t) // checks every segment written
		u := w.s.tcpConns.Usage()
		if u.MaxOut > dnsanswer.OutMax {
			t.Fatalf("a connection holds %d unsent bytes", u.MaxOut)
		}
		if u.SumOut != u.OutBytes {
			t.Fatalf("outBytes %d, but the connections hold %d", u.OutBytes, u.SumOut)
		}
	})
}
